package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// TestIntegrationExpiryWarningMail: ten minutes before its deadline the
// owner is mailed once, and at the deadline the cluster ends (and says so).
func TestIntegrationExpiryWarningMail(t *testing.T) {
	g := startSMTPGate(t)
	clk := newClock()
	smek := smektest.Start(t, smektest.Options{PoolSize: 1, Clock: clk, Configure: func(c *server.Config) {
		c.SMTPURL = "smtp://" + g.addr + "?starttls=off"
		c.MailFrom = "smek@example.com"
		c.PublicURL = "https://smek.example.com"
	}})
	token := smek.Token("warned", smektest.TokenOptions{})
	smek.WaitReady(1, false)
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token,
		`{"notification-email": "carol@example.com", "minutes-to-live": 30, "keep-cluster": false}`)
	expectMail(t, g, "carol@example.com", c.ClusterID, "is running", "")

	clk.Advance(19 * time.Minute) // 11 minutes left: no warning yet
	if err := smek.Life.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute) // 9 minutes left
	for range 2 {                // a second sweep does not warn again
		if err := smek.Life.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	expectMail(t, g, "carol@example.com", c.ClusterID, "expires", "https://smek.example.com")

	clk.Advance(10 * time.Minute) // past the deadline
	if err := smek.Life.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The next mail is the end, not a second warning.
	expectMail(t, g, "carol@example.com", c.ClusterID, "was terminated", "")
	if got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+c.ClusterID, token, ""); got.ClusterStatus != "terminated" {
		t.Errorf("cluster after its deadline: %s", got.ClusterStatus)
	}
}
