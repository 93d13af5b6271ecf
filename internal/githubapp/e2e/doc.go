// Package e2e holds the GitHub App's end-to-end tests: the App against a
// real SMEK server (internal/smektest, local backend), a real SQLite
// delivery store, and the fake GitHub API through the real go-github and
// ghinstallation clients. It is apart from package githubapp so that the
// App's own test binary stays small enough to fuzz.
package e2e
