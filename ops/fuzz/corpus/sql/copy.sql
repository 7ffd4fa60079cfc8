COPY results TO '/tmp/x.csv'
