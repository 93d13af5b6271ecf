package hetzner

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/smek/action/internal/cluster"
)

// hostKey is the SSH host key SMEK gives a server through cloud-init at
// create and at every rebuild, and then pins (data.HostKey): no trust on
// first use, so the image's old key, which a system from a snapshot may
// present before cloud-init ran, or anyone else answering on the address,
// is refused before SMEK authenticates.
type hostKey struct {
	// public is the key in authorized_keys format, as data.HostKey holds it.
	public string
	// userData is the #cloud-config that installs it.
	userData string
}

// newHostKey makes the host key of seed (32 bytes).
func newHostKey(seed []byte) (hostKey, error) {
	priv := ed25519.NewKeyFromSeed(seed)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return hostKey{}, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return hostKey{}, err
	}
	public := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	return hostKey{public: public, userData: cloudConfig(pem.EncodeToMemory(block), public)}, nil
}

// randomHostKey makes a fresh host key (a rebuild, a builder).
func randomHostKey() (hostKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return hostKey{}, err
	}
	return newHostKey(seed)
}

// memberHostKey is the host key of a member's first server. It is derived
// from the credential key and the server's name, so that a create retried
// after its answer was lost, or by the next run after a crash, adopts the
// server the first attempt made knowing the key its user data holds.
func (b *Backend) memberHostKey(m cluster.Member) (hostKey, error) {
	mac := hmac.New(sha256.New, b.cfg.CredentialKey)
	fmt.Fprintf(mac, "smek hetzner host key v1\x00%s", b.serverName(m))
	return newHostKey(mac.Sum(nil))
}

// cloudConfig is the user data that makes cloud-init's ssh module install
// the host key (cloud-init docs, module "SSH": ssh_keys with
// ed25519_private/ed25519_public; ssh_deletekeys drops the keys the image
// carries; a key given in ssh_keys is not generated again). Root keeps
// logging in with the project key (ssh_keys of the create).
func cloudConfig(privatePEM []byte, public string) string {
	var b strings.Builder
	b.WriteString("#cloud-config\n")
	b.WriteString("# SMEK: the SSH host key SMEK pins for this server\n")
	b.WriteString("ssh_deletekeys: true\n")
	b.WriteString("ssh_genkeytypes: [ed25519]\n")
	b.WriteString("disable_root: false\n")
	b.WriteString("ssh_keys:\n  ed25519_private: |\n")
	for _, l := range strings.Split(strings.TrimSpace(string(privatePEM)), "\n") {
		b.WriteString("    " + l + "\n")
	}
	b.WriteString("  ed25519_public: " + public + "\n")
	return b.String()
}
