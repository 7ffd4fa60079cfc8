WITH x AS (SELECT * FROM results) SELECT count(*) FROM x JOIN samples USING (result_id) WHERE x.batch > 1
