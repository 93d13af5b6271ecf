package wire

// Header names the API defines, for the server and its clients alike.
const (
	// HeaderRequestID carries the request's id: the client's, when it sent
	// a valid one, else the server's. Problem documents repeat it.
	HeaderRequestID = "X-Request-Id"
	// HeaderClusterID names the cluster of a YAML or script answer, whose
	// body has no room for it.
	HeaderClusterID = "SMEK-Cluster-Id"
	// HeaderOnBehalfOf names the GitHub App installation a service token
	// acts for: the server scopes the request to its linked account.
	HeaderOnBehalfOf = "SMEK-On-Behalf-Of-Installation"
	// HeaderCause, set to "webhook" by a service token, says the request
	// acts for a webhook delivery (the events name it as the cause).
	HeaderCause = "SMEK-Cause"
)
