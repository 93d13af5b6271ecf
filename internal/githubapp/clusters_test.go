package githubapp

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/smek/action/internal/client/clienttest"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/wire"
)

func TestAPIClusters(t *testing.T) {
	fake := clienttest.NewServer("smek_service")
	defer fake.Close()
	var mu sync.Mutex
	var onBehalf []string
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		onBehalf = append(onBehalf, r.Header.Get(wire.HeaderOnBehalfOf))
		mu.Unlock()
		fake.Config.Handler.ServeHTTP(w, r)
	}))
	defer front.Close()

	cs, err := NewAPIClusters(front.URL, "smek_service", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	email := "dev@example.com"
	cl, err := cs.Create(ctx, 7, cluster.CreateInput{NotificationEmail: &email})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Extend(ctx, 7, string(cl.ID), 10); err != nil {
		t.Fatal(err)
	}
	if got, err := cs.Get(ctx, 7, string(cl.ID)); err != nil || got.ID != cl.ID || got.Spec.NotificationEmail != email {
		t.Fatalf("Get: got %+v, %v; want the cluster made", got, err)
	}
	if _, err := cs.List(ctx, AsApp, cluster.Filter{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Terminate(ctx, AsApp, string(cl.ID)); err != nil {
		t.Fatal(err)
	}
	_, err = cs.Terminate(ctx, AsApp, string(cl.ID))
	if cluster.ErrorCode(err) != cluster.ECONFLICT {
		t.Fatalf("second terminate: got %v, want ECONFLICT", err)
	}
	_, err = cs.Stop(ctx, 7, "c-zzzzzz")
	if cluster.ErrorCode(err) != cluster.ENOTFOUND || cluster.ErrorMessage(err) == "internal error" {
		t.Fatalf("unknown cluster: got %v, want ENOTFOUND with the server's message", err)
	}
	want := []string{"7", "7", "7", "", "", "", "7"}
	mu.Lock()
	defer mu.Unlock()
	if len(onBehalf) != len(want) {
		t.Fatalf("requests: got %d, want %d", len(onBehalf), len(want))
	}
	for i := range want {
		if onBehalf[i] != want[i] {
			t.Errorf("request %d: %s = %q, want %q", i, wire.HeaderOnBehalfOf, onBehalf[i], want[i])
		}
	}
	if _, err := NewAPIClusters(front.URL, "", nil); err == nil {
		t.Error("an empty token was accepted")
	}
}
