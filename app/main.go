// Command app is SMEK's GitHub App as a process of its own. It holds no
// state: it reaches clusters through the provisioner's /v1 API with a
// service token and records webhook deliveries there too. A small
// installation runs the App inside the provisioner instead
// (provisioner serve --github-webhook-secret ...).
//
//	app --smek-url https://smek.example.com --smek-token smek_... \
//	    --github-webhook-secret ... --github-app-id 123 --github-app-key-file app.pem
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/smek/action/internal/envflag"
	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/httpserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(1)
	}
}

// errUsage marks errors in how the program was called (exit status 2).
var errUsage = errors.New("usage")

// config is what the flags say.
type config struct {
	addr          string
	smekURL       string
	smekToken     string
	publicURL     string
	webhookSecret string
	appID         int64
	appKeyFile    string
	apiURL        string
	logLevel      slog.Level
	timeouts      httpserver.Timeouts
	// githubTimeout and smekTimeout bound each call to GitHub's and to
	// SMEK's API; attemptTimeout each try of a delivery's work.
	githubTimeout, smekTimeout, attemptTimeout time.Duration
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8090", "listen address of the webhook endpoint")
	fs.StringVar(&c.smekURL, "smek-url", "", "the SMEK server's URL (required)")
	fs.StringVar(&c.smekToken, "smek-token", "", "a service token of the SMEK server: provisioner token create --account smek-app --service (required; prefer $SMEK_TOKEN)")
	fs.StringVar(&c.publicURL, "public-url", "", "SMEK's URL as users reach it, shown in replies (default --smek-url)")
	fs.StringVar(&c.webhookSecret, "github-webhook-secret", "", "the App's webhook secret (required; prefer $SMEK_GITHUB_WEBHOOK_SECRET)")
	fs.Int64Var(&c.appID, "github-app-id", 0, "the App's id; with --github-app-key-file it enables PR comment commands")
	fs.StringVar(&c.appKeyFile, "github-app-key-file", "", "the App's private key (PEM)")
	fs.StringVar(&c.apiURL, "github-api-url", "", "GitHub's REST API: empty for github.com, https://HOST for GitHub Enterprise Server")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	fs.DurationVar(&c.timeouts.Header, "header-timeout", httpserver.DefaultHeaderTimeout, "how long a client may take to send a request's headers")
	fs.DurationVar(&c.timeouts.Body, "body-timeout", httpserver.DefaultBodyTimeout, "how long a client may take to send a request's body, after its headers")
	fs.DurationVar(&c.timeouts.Idle, "idle-timeout", httpserver.DefaultIdleTimeout, "how long an idle kept-alive connection stays open")
	fs.DurationVar(&c.githubTimeout, "github-timeout", githubapp.DefaultRequestTimeout, "how long the App waits for each answer of GitHub's API")
	fs.DurationVar(&c.smekTimeout, "smek-timeout", githubapp.DefaultRequestTimeout, "how long the App waits for each answer of SMEK's API (a create: its wait on top)")
	fs.DurationVar(&c.attemptTimeout, "attempt-timeout", githubapp.DefaultAttemptTimeout, "how long one try of a delivery's work may take")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: app [flags]\n\nSMEK's GitHub App. Every flag can also be set in the environment: "+
			"--smek-url as SMEK_URL, --smek-token as SMEK_TOKEN, any other --name as SMEK_NAME.\n\n")
		fs.PrintDefaults()
	}
	if err := envflag.Parse(fs, args, getenv, envName); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	switch {
	case c.smekURL == "":
		return c, fmt.Errorf("%w: --smek-url (SMEK_URL) is required", errUsage)
	case c.smekToken == "":
		return c, fmt.Errorf("%w: --smek-token (SMEK_TOKEN) is required", errUsage)
	case c.webhookSecret == "":
		return c, fmt.Errorf("%w: --github-webhook-secret (SMEK_GITHUB_WEBHOOK_SECRET) is required", errUsage)
	case (c.appID == 0) != (c.appKeyFile == ""):
		return c, fmt.Errorf("%w: --github-app-id and --github-app-key-file go together", errUsage)
	case c.appID < 0:
		return c, fmt.Errorf("%w: --github-app-id must be positive", errUsage)
	case c.githubTimeout <= 0 || c.smekTimeout <= 0 || c.attemptTimeout <= 0:
		return c, fmt.Errorf("%w: --github-timeout, --smek-timeout and --attempt-timeout must be positive", errUsage)
	}
	if c.publicURL == "" {
		c.publicURL = c.smekURL
	}
	return c, nil
}

// envName is the environment variable of a flag: --smek-url is SMEK_URL,
// --github-app-id is SMEK_GITHUB_APP_ID.
func envName(flagName string) string {
	return envflag.Name("SMEK_", strings.TrimPrefix(flagName, "smek-"))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: c.logLevel}))

	clusters, err := githubapp.NewAPIClusters(c.smekURL, c.smekToken, nil, githubapp.WithTimeout(c.smekTimeout))
	if err != nil {
		return err
	}
	deliveries, err := githubapp.NewDeliveryClient(c.smekURL, c.smekToken, nil, githubapp.WithTimeout(c.smekTimeout))
	if err != nil {
		return err
	}
	cfg := githubapp.Config{
		Secret:         []byte(c.webhookSecret),
		Clusters:       clusters,
		Deliveries:     deliveries,
		PublicURL:      c.publicURL,
		Logger:         log,
		AttemptTimeout: c.attemptTimeout,
	}
	if c.appID != 0 {
		key, err := os.ReadFile(c.appKeyFile)
		if err != nil {
			return fmt.Errorf("read --github-app-key-file: %w", err)
		}
		if cfg.GitHub, err = githubapp.NewAppClient(c.appID, key, c.apiURL, nil, githubapp.WithTimeout(c.githubTimeout)); err != nil {
			return err
		}
	}
	app, err := githubapp.New(cfg)
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("POST "+githubapp.WebhookPath, app)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	l, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.addr, err)
	}
	srv := httpserver.New(mux, c.timeouts, log)
	workCtx, stopWork := context.WithCancel(context.Background())
	workDone := make(chan struct{})
	go func() { app.Run(workCtx); close(workDone) }()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(l) }()
	fmt.Fprintf(stdout, "smek app listening on http://%s%s (app id %s)\n", l.Addr(), githubapp.WebhookPath, strconv.FormatInt(c.appID, 10))

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = srv.Shutdown(shutdownCtx)
		cancel()
	}
	stopWork()
	<-workDone
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
