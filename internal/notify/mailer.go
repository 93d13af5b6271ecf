package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// Options tune a Mailer. The zero value suits production.
type Options struct {
	Logger  *slog.Logger
	Metrics Metrics
	// Clock drives the retry backoff; nil means the real clock.
	Clock clockwork.Clock
	// QueueSize bounds the mails waiting to be sent (default 256). When
	// the queue is full, Notify drops the mail and logs a warning.
	QueueSize int
	// MaxAttempts bounds the tries per mail (default 8, about 30 minutes
	// with the default backoff).
	MaxAttempts int
	// Backoff is the wait after the given failed attempt (1, 2, ...);
	// default 15s doubling up to 10m.
	Backoff func(attempt int) time.Duration
	// Timeout bounds one attempt: dial, TLS, auth and send (default 30s).
	Timeout time.Duration
	// TLSConfig replaces the default TLS settings (system roots, server
	// name from the URL), e.g. to trust a private CA.
	TLSConfig *tls.Config
}

// DefaultBackoff waits 15s after the first failed attempt and doubles up
// to 10 minutes.
func DefaultBackoff(attempt int) time.Duration {
	d := 15 * time.Second
	for i := 1; i < attempt && d < 10*time.Minute; i++ {
		d *= 2
	}
	return min(d, 10*time.Minute)
}

// Mailer sends notifications by mail from a bounded queue. Notify enqueues;
// Run, started once by the server, sends with retries.
type Mailer struct {
	cfg     Config
	from    *mail.Address
	client  *gomail.Client
	logger  *slog.Logger
	metrics Metrics
	clock   clockwork.Clock
	queue   chan message
	max     int
	backoff func(int) time.Duration
	timeout time.Duration
}

// New returns a Mailer for cfg. It does not connect: the first mail does.
func New(cfg Config, opts Options) (*Mailer, error) {
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mail from %q: %w", cfg.From, err)
	}
	m := &Mailer{
		cfg:     cfg,
		from:    from,
		logger:  opts.Logger,
		metrics: opts.Metrics,
		clock:   opts.Clock,
		max:     opts.MaxAttempts,
		backoff: opts.Backoff,
		timeout: opts.Timeout,
	}
	if m.logger == nil {
		m.logger = slog.New(slog.DiscardHandler)
	}
	m.logger = m.logger.With(logkey.Component, "mail")
	if m.metrics == nil {
		m.metrics = nopMetrics{}
	}
	if m.clock == nil {
		m.clock = clockwork.NewRealClock()
	}
	if m.max <= 0 {
		m.max = 8
	}
	if m.backoff == nil {
		m.backoff = DefaultBackoff
	}
	if m.timeout <= 0 {
		m.timeout = 30 * time.Second
	}
	size := opts.QueueSize
	if size <= 0 {
		size = 256
	}
	m.queue = make(chan message, size)
	m.client, err = newClient(cfg.SMTP, opts.TLSConfig, m.timeout)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func newClient(c SMTPConfig, tlsConfig *tls.Config, timeout time.Duration) (*gomail.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if tlsConfig != nil {
		tc = tlsConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = c.Host
	}
	opts := []gomail.Option{gomail.WithPort(c.Port), gomail.WithTimeout(timeout), gomail.WithTLSConfig(tc)}
	switch c.TLS {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case StartTLSRequired:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case StartTLSOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case StartTLSOff:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		return nil, fmt.Errorf("smtp: unknown tls mode %q", c.TLS)
	}
	if c.Username != "" {
		auth := gomail.SMTPAuthAutoDiscover
		if c.TLS == StartTLSOff {
			// ParseSMTPURL allows a password without TLS only on loopback.
			auth = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(c.Username), gomail.WithPassword(c.Password))
	}
	client, err := gomail.NewClient(c.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client for %s: %w", c, err)
	}
	return client, nil
}

// Notify queues a mail to the cluster's notification-email. It never
// blocks: when the queue is full the mail is dropped with a warning.
// Clusters without a notification-email get nothing.
func (m *Mailer) Notify(_ context.Context, n cluster.Notification) {
	if n.Cluster.Spec.NotificationEmail == "" {
		return
	}
	msg, err := compose(n, m.cfg.PublicURL)
	if err != nil {
		m.logger.Error("compose mail", logkey.Cluster, n.Cluster.ID, logkey.Kind, n.Kind, logkey.Err, err)
		m.metrics.Mail(string(n.Kind), "failed")
		return
	}
	select {
	case m.queue <- msg:
	default:
		m.logger.Warn("mail queue full: dropping mail", logkey.Cluster, n.Cluster.ID, logkey.Kind, n.Kind, "queue", cap(m.queue))
		m.metrics.Mail(string(n.Kind), "dropped")
	}
}

// Run sends queued mails until ctx ends. Mails still queued then are
// lost; the log says how many.
func (m *Mailer) Run(ctx context.Context) error {
	m.logger.Info("mail is on", "smtp", m.cfg.SMTP, "from", m.from.Address)
	for {
		select {
		case <-ctx.Done():
			if n := len(m.queue); n > 0 {
				m.logger.Warn("mail stopped with mails unsent", "unsent", n)
			}
			return nil
		case msg := <-m.queue:
			m.deliver(ctx, msg)
		}
	}
}

// deliver sends msg, retrying with backoff. The queue waits meanwhile:
// when one mail cannot get through, the next would not either.
func (m *Mailer) deliver(ctx context.Context, msg message) {
	log := m.logger.With(logkey.Cluster, msg.ClusterID, logkey.Kind, msg.Kind, "to", msg.To)
	for attempt := 1; ; attempt++ {
		err := m.send(ctx, msg)
		if err == nil {
			m.metrics.Mail(string(msg.Kind), "sent")
			log.Info("mail sent", logkey.Attempt, attempt)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if permanent(err) || attempt >= m.max {
			m.metrics.Mail(string(msg.Kind), "failed")
			log.Error("mail not sent: giving up", logkey.Attempt, attempt, "permanent", permanent(err), logkey.Err, err)
			return
		}
		wait := m.backoff(attempt)
		m.metrics.Mail(string(msg.Kind), "retried")
		log.Warn("mail not sent: will retry", logkey.Attempt, attempt, logkey.RetryIn, wait, logkey.Err, err)
		select {
		case <-ctx.Done():
			return
		case <-m.clock.After(wait):
		}
	}
}

func (m *Mailer) send(ctx context.Context, msg message) error {
	gm := gomail.NewMsg()
	gm.FromMailAddress(m.from)
	if err := gm.To(msg.To); err != nil {
		return permanentError{fmt.Errorf("recipient %q: %w", msg.To, err)}
	}
	gm.Subject(msg.Subject)
	gm.SetDateWithValue(m.clock.Now())
	gm.SetMessageID()
	gm.SetGenHeader(gomail.HeaderXMailer, "SMEK")
	gm.SetBodyString(gomail.TypeTextPlain, msg.Text)
	gm.AddAlternativeString(gomail.TypeTextHTML, msg.HTML)
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	if err := m.client.DialAndSendWithContext(ctx, gm); err != nil {
		return fmt.Errorf("send mail: %w", err)
	}
	return nil
}

// permanentError marks a failure that a retry cannot fix.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// permanent reports whether err will recur on retry: a bad address, or a
// 5xx answer from the server (RFC 5321: permanent negative completion).
func permanent(err error) bool {
	if _, ok := errors.AsType[permanentError](err); ok {
		return true
	}
	if se, ok := errors.AsType[*gomail.SendError](err); ok {
		code := se.ErrorCode()
		return code >= 500 && code < 600
	}
	return false
}
