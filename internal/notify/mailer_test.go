package notify

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/cluster"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testCluster() cluster.Cluster {
	return cluster.Cluster{
		ID:      "c-ab12cd",
		Account: "team-a",
		Spec: cluster.Spec{K8sVersion: "1.27.4", MinutesToLive: 60, KeepCluster: true,
			NotificationEmail: "dev@example.com", Size: "1-mid"},
		Status:    cluster.Running,
		APIServer: "https://127.0.0.1:40001",
		CreatedAt: t0,
		ExpiresAt: t0.Add(time.Hour),
	}
}

// recorder is a Metrics that also reports every result on a channel, so
// tests can wait for the worker without sleeping.
type recorder struct {
	mu     sync.Mutex
	counts map[string]int
	events chan string
}

func newRecorder() *recorder {
	return &recorder{counts: map[string]int{}, events: make(chan string, 100)}
}

func (r *recorder) Mail(kind, result string) {
	r.mu.Lock()
	r.counts[kind+"/"+result]++
	r.mu.Unlock()
	r.events <- kind + "/" + result
}

func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[key]
}

// wait returns the next recorded result, failing the test when none comes
// in time (a safety net: the test never sleeps to pass).
func (r *recorder) wait(t *testing.T) string {
	t.Helper()
	select {
	case e := <-r.events:
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("no mail result recorded")
		return ""
	}
}

// lockedBuffer collects log output written from the mail worker.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type fixture struct {
	m     *Mailer
	rec   *recorder
	clock *clockwork.FakeClock
	logs  *lockedBuffer
}

func newMailer(t *testing.T, smtpURL string, opts Options) *fixture {
	t.Helper()
	cfg, err := ParseConfig(smtpURL, "SMEK <smek@example.com>", "https://smek.example.com")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{rec: newRecorder(), clock: clockwork.NewFakeClockAt(t0), logs: &lockedBuffer{}}
	opts.Metrics, opts.Clock = f.rec, f.clock
	opts.Logger = slog.New(slog.NewTextHandler(f.logs, nil))
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	f.m, err = New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// run starts the worker and stops it at the end of the test.
func (f *fixture) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.m.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func receive(t *testing.T, s *smtpServer) received {
	t.Helper()
	select {
	case m := <-s.Mail:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("the SMTP server got no mail")
		return received{}
	}
}

func TestStartedMailReachesSMTPServer(t *testing.T) {
	srv := startSMTP(t, nil, serverOptions{})
	f := newMailer(t, "smtp://"+srv.Addr+"?starttls=off", Options{})
	f.run(t)

	f.m.Notify(context.Background(), cluster.Notification{Kind: cluster.NotifyStarted, Cluster: testCluster(), Cause: "api", At: t0})

	got := receive(t, srv)
	if got.From != "smek@example.com" || len(got.To) != 1 || got.To[0] != "dev@example.com" {
		t.Errorf("envelope: got from %q to %q, want smek@example.com to [dev@example.com]", got.From, got.To)
	}
	if h := got.Header.Get("To"); !strings.Contains(h, "dev@example.com") {
		t.Errorf("To header: got %q, want dev@example.com", h)
	}
	if want := "SMEK cluster c-ab12cd is running (until 2026-03-01 13:00 UTC)"; got.Subject != want {
		t.Errorf("subject: got %q, want %q", got.Subject, want)
	}
	for _, part := range []struct{ name, body string }{{"text", got.Text}, {"html", got.HTML}} {
		for _, want := range []string{
			"c-ab12cd", "1.27.4", "2026-03-01 13:00 UTC", "in 60 minutes", "team-a",
			"https://smek.example.com/v1/clusters/c-ab12cd/extend",
			"https://smek.example.com/stop",
			"force-terminate",
		} {
			if !strings.Contains(part.body, want) {
				t.Errorf("%s part lacks %q:\n%s", part.name, want, part.body)
			}
		}
	}
	if !strings.Contains(got.HTML, "<pre") || strings.Contains(got.Text, "<pre") {
		t.Errorf("want HTML only in the html part; text:\n%s\nhtml:\n%s", got.Text, got.HTML)
	}
	if e := f.rec.wait(t); e != "started/sent" {
		t.Errorf("metric: got %q, want started/sent", e)
	}
}

func TestClusterWithoutEmailGetsNoMail(t *testing.T) {
	f := newMailer(t, "smtp://127.0.0.1:1?starttls=off", Options{})
	c := testCluster()
	c.Spec.NotificationEmail = ""
	f.m.Notify(context.Background(), cluster.Notification{Kind: cluster.NotifyStarted, Cluster: c, At: t0})
	if n := len(f.m.queue); n != 0 {
		t.Errorf("queued %d mails, want none", n)
	}
}

// TestDownServerDelaysMail: with the SMTP server down, Notify returns at
// once; the worker retries on the injected clock and delivers once the
// server is up. The SMTP password never reaches the log.
func TestDownServerDelaysMail(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused

	const password = "hunter2-very-secret"
	f := newMailer(t, "smtp://smek:"+password+"@"+addr+"?starttls=off", Options{
		Backoff: func(int) time.Duration { return time.Minute },
	})
	f.run(t)

	f.m.Notify(context.Background(), cluster.Notification{Kind: cluster.NotifyExpiring, Cluster: testCluster(), Cause: "ttl", At: t0.Add(50 * time.Minute)})

	if e := f.rec.wait(t); e != "expiring/retried" {
		t.Fatalf("first attempt: got %q, want expiring/retried", e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("worker is not waiting for its retry: %v", err)
	}

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv := startSMTP(t, ln, serverOptions{Auth: [2]string{"smek", password}})
	f.clock.Advance(time.Minute)

	got := receive(t, srv)
	if got.Subject != "SMEK cluster c-ab12cd expires in 10 minutes" {
		t.Errorf("subject: got %q, want the expiry warning", got.Subject)
	}
	if got.User != "smek" {
		t.Errorf("auth user: got %q, want smek", got.User)
	}
	if e := f.rec.wait(t); e != "expiring/sent" {
		t.Errorf("second attempt: got %q, want expiring/sent", e)
	}
	if logs := f.logs.String(); strings.Contains(logs, password) {
		t.Errorf("the log shows the SMTP password:\n%s", logs)
	} else if !strings.Contains(logs, "will retry") {
		t.Errorf("the log does not say that the mail will be retried:\n%s", logs)
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	f := newMailer(t, "smtp://"+addr+"?starttls=off", Options{MaxAttempts: 2, Backoff: func(int) time.Duration { return time.Second }})
	f.run(t)

	f.m.Notify(context.Background(), cluster.Notification{Kind: cluster.NotifyStopped, Cluster: testCluster(), Cause: "api", At: t0})
	if e := f.rec.wait(t); e != "stopped/retried" {
		t.Fatalf("got %q, want stopped/retried", e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	if e := f.rec.wait(t); e != "stopped/failed" {
		t.Errorf("got %q, want stopped/failed after 2 attempts", e)
	}
}

func TestPermanentRejectionIsNotRetried(t *testing.T) {
	srv := startSMTP(t, nil, serverOptions{RejectRcp: true})
	f := newMailer(t, "smtp://"+srv.Addr+"?starttls=off", Options{})
	f.run(t)
	f.m.Notify(context.Background(), cluster.Notification{Kind: cluster.NotifyTerminated, Cluster: testCluster(), Cause: "ttl", At: t0})
	if e := f.rec.wait(t); e != "terminated/failed" {
		t.Errorf("got %q, want terminated/failed at once on a 550", e)
	}
	if n := f.rec.count("terminated/retried"); n != 0 {
		t.Errorf("retried %d times, want 0", n)
	}
}

func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	f := newMailer(t, "smtp://127.0.0.1:1?starttls=off", Options{QueueSize: 2})
	// No worker runs: the queue only fills.
	for range 5 {
		f.m.Notify(context.Background(), cluster.Notification{Kind: cluster.NotifyStarted, Cluster: testCluster(), At: t0})
	}
	if got := f.rec.count("started/dropped"); got != 3 {
		t.Errorf("dropped %d mails, want 3", got)
	}
	if logs := f.logs.String(); strings.Count(logs, "mail queue full") != 3 {
		t.Errorf("want 3 warnings about the full queue, got:\n%s", logs)
	}
}

func TestSTARTTLSWithSelfSignedCert(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	srv := startSMTP(t, nil, serverOptions{TLS: serverTLS, Auth: [2]string{"smek", "pw"}})
	f := newMailer(t, "smtp://smek:pw@"+srv.Addr+"?starttls=required", Options{TLSConfig: clientTLS})
	f.run(t)

	f.m.Notify(context.Background(), cluster.Notification{Kind: cluster.NotifyStopped, Cluster: testCluster(), Cause: "ttl", At: t0})
	got := receive(t, srv)
	if !got.TLS {
		t.Error("the mail came over a plain connection, want STARTTLS")
	}
	if got.User != "smek" || got.Password != "pw" {
		t.Errorf("auth: got %q/%q, want smek/pw", got.User, got.Password)
	}
	if got.Subject != "SMEK cluster c-ab12cd was stopped" {
		t.Errorf("subject: got %q", got.Subject)
	}
	for _, want := range []string{"/start", "because it reached its deadline"} {
		if !strings.Contains(got.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, got.Text)
		}
	}
}

func TestSTARTTLSRequiredRefusesAServerWithoutIt(t *testing.T) {
	srv := startSMTP(t, nil, serverOptions{})
	f := newMailer(t, "smtp://smek:pw@"+srv.Addr+"?starttls=required", Options{MaxAttempts: 1})
	f.run(t)
	f.m.Notify(context.Background(), cluster.Notification{Kind: cluster.NotifyStarted, Cluster: testCluster(), At: t0})
	if e := f.rec.wait(t); e != "started/failed" {
		t.Errorf("got %q, want started/failed: no STARTTLS, no mail", e)
	}
	select {
	case m := <-srv.Mail:
		t.Errorf("the server got a mail over plain text: %q", m.Subject)
	default:
	}
}

func TestSTARTTLSRejectsUntrustedCert(t *testing.T) {
	serverTLS, _ := selfSigned(t)
	srv := startSMTP(t, nil, serverOptions{TLS: serverTLS})
	f := newMailer(t, "smtp://"+srv.Addr+"?starttls=required", Options{MaxAttempts: 1})
	f.run(t)
	f.m.Notify(context.Background(), cluster.Notification{Kind: cluster.NotifyStarted, Cluster: testCluster(), At: t0})
	if e := f.rec.wait(t); e != "started/failed" {
		t.Errorf("got %q, want started/failed: the certificate is not trusted", e)
	}
}

func TestImplicitTLS(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	srv := startSMTP(t, nil, serverOptions{TLS: serverTLS, Implicit: true, Auth: [2]string{"smek", "pw"}})
	f := newMailer(t, "smtps://smek:pw@"+srv.Addr, Options{TLSConfig: clientTLS})
	f.run(t)
	f.m.Notify(context.Background(), cluster.Notification{Kind: cluster.NotifyTerminated, Cluster: testCluster(), Cause: "webhook", At: t0})
	got := receive(t, srv)
	if !got.TLS || got.User != "smek" {
		t.Errorf("got TLS %v user %q, want TLS and smek", got.TLS, got.User)
	}
	if strings.Contains(got.Text, "curl") {
		t.Errorf("a terminated cluster's mail offers actions:\n%s", got.Text)
	}
}

func TestDefaultBackoff(t *testing.T) {
	want := []time.Duration{15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute}
	for i, w := range want {
		if got := DefaultBackoff(i + 1); got != w {
			t.Errorf("DefaultBackoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}
