package notify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// received is one mail as the test SMTP server got it.
type received struct {
	From     string
	To       []string
	TLS      bool
	User     string
	Password string
	Header   mail.Header
	Subject  string
	Text     string
	HTML     string
}

// smtpServer is a real SMTP server (emersion/go-smtp) on loopback that
// hands every accepted mail to a channel.
type smtpServer struct {
	Addr string
	Mail chan received

	// auth, when set, is the only user:password accepted; mail then needs
	// AUTH first.
	auth      [2]string
	rejectRcp bool
	srv       *smtp.Server
}

type serverOptions struct {
	TLS       *tls.Config // offers STARTTLS when set
	Implicit  bool        // TLS from the first byte (smtps)
	Auth      [2]string   // user, password required when set
	RejectRcp bool        // answer RCPT with 550
}

// startSMTP serves on ln (or a fresh loopback port when ln is nil).
func startSMTP(t *testing.T, ln net.Listener, o serverOptions) *smtpServer {
	t.Helper()
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
	}
	s := &smtpServer{Addr: ln.Addr().String(), Mail: make(chan received, 16), auth: o.Auth, rejectRcp: o.RejectRcp}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: s, conn: c}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = o.TLS == nil && !o.Implicit
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	if o.TLS != nil && !o.Implicit {
		s.srv.TLSConfig = o.TLS
	}
	if o.Implicit {
		ln = tls.NewListener(ln, o.TLS)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		s.srv.Close()
		<-done
	})
	return s
}

type session struct {
	srv  *smtpServer
	conn *smtp.Conn
	got  received
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if s.srv.auth != [2]string{} && (user != s.srv.auth[0] || pass != s.srv.auth[1]) {
			return errors.New("invalid credentials")
		}
		s.got.User, s.got.Password = user, pass
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.srv.auth != [2]string{} && s.got.User == "" {
		return smtp.ErrAuthRequired
	}
	s.got.From = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.srv.rejectRcp {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	s.got.To = append(s.got.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	got := s.got
	_, got.TLS = s.conn.TLSConnectionState()
	if err := parseMail(raw, &got); err != nil {
		return err
	}
	s.srv.Mail <- got
	return nil
}

func (s *session) Reset() {
	user, pass := s.got.User, s.got.Password
	s.got = received{User: user, Password: pass}
}

func (s *session) Logout() error { return nil }

// parseMail splits a multipart/alternative mail into its text and HTML
// parts, decoding quoted-printable and base64 bodies.
func parseMail(raw []byte, got *received) error {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	got.Header = m.Header
	got.Subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		return err
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	if mt != "multipart/alternative" {
		return errors.New("content type " + mt + ", want multipart/alternative")
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var body io.Reader = p
		switch strings.ToLower(p.Header.Get("Content-Transfer-Encoding")) {
		case "quoted-printable":
			body = quotedprintable.NewReader(p)
		case "base64":
			return errors.New("base64 part: not expected for text")
		}
		b, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch pt {
		case "text/plain":
			got.Text = string(b)
		case "text/html":
			got.HTML = string(b)
		}
	}
}

// selfSigned returns a server TLS config with a fresh self-signed
// certificate for 127.0.0.1 and localhost, and a client config that trusts
// only it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smek test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}
