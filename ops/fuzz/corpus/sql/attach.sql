ATTACH ':memory:' AS m
