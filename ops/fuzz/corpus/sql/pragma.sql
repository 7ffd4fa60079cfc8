PRAGMA threads=1
