package hcloudfake

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error codes of the Hetzner Cloud API (docs "Error Codes").
const (
	CodeInvalidInput          = "invalid_input"
	CodeJSONError             = "json_error"
	CodeUnauthorized          = "unauthorized"
	CodeForbidden             = "forbidden"
	CodeNotFound              = "not_found"
	CodeUniquenessError       = "uniqueness_error"
	CodeLocked                = "locked"
	CodeRateLimitExceeded     = "rate_limit_exceeded"
	CodeResourceLimitExceeded = "resource_limit_exceeded"
	CodeResourceUnavailable   = "resource_unavailable"
	CodeServerError           = "server_error"
	CodeServiceError          = "service_error"
	CodeUnavailable           = "unavailable"
	CodeTimeout               = "timeout"
	CodeConflict              = "conflict"
	CodeDeprecatedEndpoint    = "deprecated_api_endpoint"
	CodeUnsupported           = "unsupported_error"
	// CodePlacementError is specific to creating a server: "An error
	// during the placement occurred" (docs); a create elsewhere may work.
	CodePlacementError = "placement_error"
)

// statusOf maps an error code to its HTTP status. Only 429 is documented;
// the rest follows the commonly observed mapping noted in the fixtures.
func statusOf(code string) int {
	switch code {
	case CodeInvalidInput, CodeJSONError:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden, CodeResourceLimitExceeded:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeUniquenessError, CodeConflict:
		return http.StatusConflict
	case CodeDeprecatedEndpoint:
		return http.StatusGone
	case CodeUnsupported:
		return http.StatusUnprocessableEntity
	case CodeLocked:
		return http.StatusLocked
	case CodePlacementError:
		return http.StatusPreconditionFailed
	case CodeRateLimitExceeded:
		return http.StatusTooManyRequests
	case CodeServiceError, CodeUnavailable, CodeResourceUnavailable:
		return http.StatusServiceUnavailable
	case CodeTimeout:
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// apiError is an error answered in the documented envelope
// {"error":{"code","message","details"}}.
type apiError struct {
	Code    string
	Message string
	Details any
	// Status overrides the code's usual HTTP status.
	Status int
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

type fieldError struct {
	Name     string   `json:"name"`
	Messages []string `json:"messages,omitempty"`
}

func errf(code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// invalidField is an invalid_input error naming the field, shaped like the
// docs' example: details.fields[{name, messages}].
func invalidField(field, msg string) *apiError {
	return &apiError{
		Code:    CodeInvalidInput,
		Message: fmt.Sprintf("invalid input in field '%s': %s", field, msg),
		Details: map[string]any{"fields": []fieldError{{Name: field, Messages: []string{msg}}}},
	}
}

func uniqueField(field, msg string) *apiError {
	return &apiError{
		Code:    CodeUniquenessError,
		Message: msg,
		Details: map[string]any{"fields": []fieldError{{Name: field}}},
	}
}

func notFound(kind string, id any) *apiError {
	return errf(CodeNotFound, "%s with ID '%v' not found", kind, id)
}

func writeError(w http.ResponseWriter, e *apiError) {
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	body := map[string]any{"error": map[string]any{
		"code": e.Code, "message": e.Message, "details": details,
	}}
	status := statusOf(e.Code)
	if e.Status != 0 {
		status = e.Status
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
