SELECT model, batch, latency_p50_ns/1e6 AS p50_ms FROM latest_results ORDER BY p50_ms
