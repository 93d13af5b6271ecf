package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// gotMail is one mail as the test SMTP server got it.
type gotMail struct {
	From    string
	To      []string
	Subject string
	Text    string
	HTML    string
}

// smtpGate is a real SMTP server (emersion/go-smtp) on loopback behind a
// gate. Open, it serves every connection; shut, it accepts connections and
// never answers them, as a hung SMTP server does. Opening the gate again
// serves the connections it held.
type smtpGate struct {
	addr   string
	mail   chan gotMail
	held   chan struct{} // a connection was held while shut
	toSMTP chan net.Conn

	mu      sync.Mutex
	shut    bool
	holding []net.Conn
}

func startSMTPGate(t *testing.T) *smtpGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &smtpGate{addr: ln.Addr().String(), mail: make(chan gotMail, 16), held: make(chan struct{}, 16), toSMTP: make(chan net.Conn, 16)}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{gate: g}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	inner := &chanListener{conns: g.toSMTP, closed: make(chan struct{}), addr: ln.Addr()}
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(inner) })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.mu.Lock()
			if g.shut {
				g.holding = append(g.holding, c)
				g.mu.Unlock()
				g.held <- struct{}{}
				continue
			}
			g.mu.Unlock()
			g.toSMTP <- c
		}
	})
	t.Cleanup(func() {
		ln.Close()
		srv.Close()
		inner.Close()
		wg.Wait()
		g.mu.Lock()
		for _, c := range g.holding {
			c.Close()
		}
		g.mu.Unlock()
	})
	return g
}

// Shut makes the server hang: connections are accepted, never answered.
func (g *smtpGate) Shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shut = true
}

// Open serves again, the held connections first.
func (g *smtpGate) Open() {
	g.mu.Lock()
	held := g.holding
	g.holding, g.shut = nil, false
	g.mu.Unlock()
	for _, c := range held {
		g.toSMTP <- c
	}
}

// chanListener hands go-smtp the connections the gate lets through.
type chanListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	addr   net.Addr
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

type mailSession struct {
	gate *smtpGate
	got  gotMail
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error { s.got.From = from; return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.got.To = append(s.got.To, to)
	return nil
}
func (s *mailSession) Reset()        { s.got = gotMail{} }
func (s *mailSession) Logout() error { return nil }

func (s *mailSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	got := s.got
	if err := parseMultipart(raw, &got); err != nil {
		return err
	}
	s.gate.mail <- got
	return nil
}

// parseMultipart reads the subject and the text and HTML parts of a
// multipart/alternative mail.
func parseMultipart(raw []byte, got *gotMail) error {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if got.Subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); err != nil {
		return err
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		return fmt.Errorf("content type %q, want multipart/alternative: %v", mt, err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var body io.Reader = p
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(p)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		switch pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); pt {
		case "text/plain":
			got.Text = string(b)
		case "text/html":
			got.HTML = string(b)
		}
	}
}

// mailTimeout bounds the wait for a mail. A mail held back by a hung SMTP
// server goes out on the mailer's next attempt after the gate opens: at
// most one connection timeout (30 s) and a backoff (up to 60 s) later.
const mailTimeout = 4 * time.Minute

// expectMail waits for the next mail and checks it is about cluster id;
// with publicURL it must also tell how to act on the cluster there.
func expectMail(t *testing.T, g *smtpGate, to, id, subject, publicURL string) gotMail {
	t.Helper()
	m := waitFor(t, g.mail, mailTimeout, fmt.Sprintf("%q mail for %s", subject, id))
	if len(m.To) != 1 || m.To[0] != to || m.From != "smek@example.com" {
		t.Errorf("mail from %s to %v, want smek@example.com to %s", m.From, m.To, to)
	}
	if !strings.Contains(m.Subject, id) || !strings.Contains(m.Subject, subject) {
		t.Errorf("subject %q, want %q about %s", m.Subject, subject, id)
	}
	if !strings.Contains(m.Text, id) || !strings.Contains(m.HTML, id) {
		t.Errorf("mail does not name %s:\n%s", id, m.Text)
	}
	if publicURL != "" && !strings.Contains(m.Text, "curl -Ss "+publicURL+"/") {
		t.Errorf("mail does not tell how to act on %s at %s:\n%s", id, publicURL, m.Text)
	}
	return m
}

// TestIntegrationMail: the server mails the notification-email when a
// cluster starts and stops, and a hung SMTP server delays the mail but
// never the API.
func TestIntegrationMail(t *testing.T) {
	g := startSMTPGate(t)
	const publicURL = "https://smek.example.com"
	smek := smektest.Start(t, smektest.Options{Configure: func(c *server.Config) {
		c.SMTPURL = "smtp://" + g.addr + "?starttls=off"
		c.MailFrom = "smek@example.com"
		c.PublicURL = publicURL
	}})
	token := smek.Token("mailed", smektest.TokenOptions{})

	a := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token,
		`{"notification-email": "alice@example.com", "keep-cluster": true}`)
	started := expectMail(t, g, "alice@example.com", a.ClusterID, "is running", publicURL)
	if !strings.Contains(started.Text, publicURL+"/v1/clusters/"+a.ClusterID+"/extend") || !strings.Contains(started.Text, publicURL+"/stop") {
		t.Errorf("the started mail does not tell how to extend or stop:\n%s", started.Text)
	}

	// The SMTP server hangs. The stop's mail is stuck in the mailer...
	g.Shut()
	mustJSON[wire.Cluster](t, 200, "POST", smek.URL+"/v1/clusters/"+a.ClusterID+"/stop", token, "")
	waitFor(t, g.held, mailTimeout, "connection of the mailer to the hung SMTP server")
	// ...while the API answers: a create and a terminate go through.
	b := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{"notification-email": "bob@example.com"}`)
	if b.Kubeconfig == "" || b.ClusterStatus != "running" {
		t.Errorf("create while mail hangs: %s, kubeconfig %t", b.ClusterStatus, b.Kubeconfig != "")
	}
	mustJSON[wire.Cluster](t, 200, "DELETE", smek.URL+"/v1/clusters/"+a.ClusterID, token, "")

	// The server recovers; the mails go out late, in order.
	g.Open()
	expectMail(t, g, "alice@example.com", a.ClusterID, "was stopped", publicURL)
	expectMail(t, g, "bob@example.com", b.ClusterID, "is running", publicURL)
	expectMail(t, g, "alice@example.com", a.ClusterID, "was terminated", "")
}
