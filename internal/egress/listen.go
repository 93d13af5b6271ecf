package egress

import (
	"fmt"
	"net"
	"os"
)

// ListenUnix listens on a unix socket at path, for one control plane's
// kube-apiserver. The socket is made mode 0600: only SMEK's own user, which
// runs the API servers, may connect. A socket left behind by a crash is
// replaced; any other file at path is an error. Closing the listener
// removes the socket.
func ListenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen on %s: not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return l, nil
}
