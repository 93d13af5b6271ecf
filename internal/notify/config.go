package notify

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// TLSMode says how the connection to the SMTP server is secured.
type TLSMode string

// TLS modes. smtps:// URLs mean TLSImplicit; smtp:// URLs take one of the
// STARTTLS modes from ?starttls= (default required).
const (
	TLSImplicit           TLSMode = "implicit"      // TLS from the first byte (port 465)
	StartTLSRequired      TLSMode = "required"      // STARTTLS or no mail
	StartTLSOpportunistic TLSMode = "opportunistic" // STARTTLS when offered
	StartTLSOff           TLSMode = "off"           // plain text
)

// SMTPConfig is where and how mail is submitted. Password is a secret:
// String and LogValue leave it out.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string
	Password string
	TLS      TLSMode
}

// Config is what the Mailer needs besides its options.
type Config struct {
	SMTP SMTPConfig
	// From is the sender address, e.g. "SMEK <smek@example.com>".
	From string
	// PublicURL is the SMEK API's base URL as users reach it; mails show
	// curl lines against it.
	PublicURL string
}

// ParseConfig parses the SMTP URL, the sender address and the public URL.
func ParseConfig(smtpURL, from, publicURL string) (Config, error) {
	smtp, err := ParseSMTPURL(smtpURL)
	if err != nil {
		return Config{}, err
	}
	if _, err := mail.ParseAddress(from); err != nil {
		return Config{}, fmt.Errorf("mail from %q: %w", from, err)
	}
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Config{}, fmt.Errorf("public url %q: want an absolute http or https URL", publicURL)
	}
	return Config{SMTP: smtp, From: from, PublicURL: strings.TrimSuffix(publicURL, "/")}, nil
}

// ParseSMTPURL parses smtp://user:pass@host:port?starttls=required|opportunistic|off
// or smtps://user:pass@host:port (implicit TLS). The port defaults to 587
// for smtp and 465 for smtps. Errors never quote the password.
func ParseSMTPURL(raw string) (SMTPConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included: keep only
		// the reason.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return SMTPConfig{}, fmt.Errorf("smtp url: %w", err)
	}
	var c SMTPConfig
	switch u.Scheme {
	case "smtp":
		c.TLS, c.Port = StartTLSRequired, 587
	case "smtps":
		c.TLS, c.Port = TLSImplicit, 465
	default:
		return SMTPConfig{}, fmt.Errorf("smtp url: scheme %q is not smtp or smtps", u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return SMTPConfig{}, errors.New("smtp url: no host (want smtp://user:pass@host:port)")
	}
	if u.Path != "" && u.Path != "/" {
		return SMTPConfig{}, errors.New("smtp url: a path is not allowed")
	}
	c.Host = u.Hostname()
	if !validHost(c.Host) {
		return SMTPConfig{}, fmt.Errorf("smtp url: host %q is not a host name or IP address", cluster.Truncate(c.Host, 40))
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return SMTPConfig{}, fmt.Errorf("smtp url: port %q is not a number from 1 to 65535", p)
		}
		c.Port = n
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	for key, vals := range u.Query() {
		switch key {
		case "starttls":
			if c.TLS == TLSImplicit {
				return SMTPConfig{}, errors.New("smtp url: starttls does not apply to smtps (TLS from the start)")
			}
			switch mode := TLSMode(vals[len(vals)-1]); mode {
			case StartTLSRequired, StartTLSOpportunistic, StartTLSOff:
				c.TLS = mode
			default:
				return SMTPConfig{}, fmt.Errorf("smtp url: starttls=%q is not one of required, opportunistic, off", cluster.Truncate(string(mode), 20))
			}
		default:
			return SMTPConfig{}, fmt.Errorf("smtp url: unknown parameter %q (known: starttls)", cluster.Truncate(key, 20))
		}
	}
	if c.Password != "" && c.TLS != TLSImplicit && c.TLS != StartTLSRequired && !isLoopback(c.Host) {
		return SMTPConfig{}, fmt.Errorf("smtp url: refusing to send the SMTP password to %s without TLS; use starttls=required or smtps", c.Host)
	}
	return c, nil
}

// String returns the URL without the password.
func (c SMTPConfig) String() string {
	u := url.URL{Scheme: "smtp", Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port))}
	if c.TLS == TLSImplicit {
		u.Scheme = "smtps"
	} else {
		u.RawQuery = "starttls=" + string(c.TLS)
	}
	if c.Username != "" {
		u.User = url.User(c.Username)
	}
	return u.String()
}

// LogValue logs the configuration without the password.
func (c SMTPConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host),
		slog.Int("port", c.Port),
		slog.String(logkey.User, c.Username),
		slog.String("tls", string(c.TLS)),
		slog.Bool("password", c.Password != ""),
	)
}

// validHost accepts IP addresses and DNS names.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
