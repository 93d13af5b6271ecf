package githubapp

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// BenchmarkWebhookAccept measures the deliveries per second the endpoint
// accepts over HTTP: signature check, decoding, dedup and queueing of a
// real workflow_run payload, with the workers draining the queue. The
// delivery store is in memory here; ./e2e measures it on SQLite.
func BenchmarkWebhookAccept(b *testing.B) {
	app, err := New(Config{Secret: []byte(testSecret), Clusters: newMemClusters(nil),
		Deliveries: &memDeliveries{}, QueueSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go app.Run(ctx)
	srv := httptest.NewServer(app)
	defer srv.Close()
	benchmarkAccept(b, srv.URL+WebhookPath, fixture(b, "workflow_run.completed.json"))
}

// benchmarkAccept posts signed deliveries with fresh ids in parallel. Each
// payload differs (a field is added in front), as GitHub's do: the same
// payload twice would be a duplicate.
func benchmarkAccept(b *testing.B, url string, body []byte) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var seq atomic.Int64
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			payload := append(fmt.Appendf(nil, `{"bench":%d,`, n), body[1:]...)
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
			req.Header.Set(EventHeader, "workflow_run")
			req.Header.Set(DeliveryHeader, fmt.Sprintf("bench-%d", n))
			req.Header.Set(SignatureHeader, Sign([]byte(testSecret), payload))
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Fatalf("got %d, want 202", resp.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
