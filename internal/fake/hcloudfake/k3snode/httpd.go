package k3snode

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// httpdPort reads busybox httpd's arguments: the stand-in serves only in
// the foreground (-f; without it httpd forks into the background and the
// container's process exits), on -p [IP:]PORT (80 by default).
func httpdPort(args []string) (int, bool) {
	foreground, port := false, 80
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-f":
			foreground = true
		case a == "-p" && i+1 < len(args):
			v := args[i+1]
			if j := strings.LastIndexByte(v, ':'); j >= 0 {
				v = v[j+1:]
			}
			p, err := strconv.Atoi(v)
			if err != nil || p <= 0 || p > 65535 {
				return 0, false
			}
			port, i = p, i+1
		case strings.HasPrefix(a, "-") && strings.Contains(a, "f") && !strings.ContainsAny(a, "pchurmdeP"):
			foreground = true
		}
	}
	return port, foreground
}

// busyboxNotFound is busybox httpd's answer for a file it does not have.
const busyboxNotFound = "<HTML><HEAD><TITLE>404 Not Found</TITLE></HEAD>\n<BODY><H1>404 Not Found</H1>\nThe requested URL was not found\n</BODY></HTML>\n"

// serveHTTPD stands in for busybox httpd serving an empty folder: 404 for
// every request. It returns its loopback address and a stop function.
func serveHTTPD() (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, busyboxNotFound)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(l) }()
	return l.Addr().String(), func() { _ = srv.Close() }, nil
}
