// Package crm is a profile.Backend that loads profiles from a CRM over a
// small JSON REST API. cmd uses it when BACKEND_URL is set, and the demo
// MockBackend otherwise.
//
// # The API a CRM has to offer
//
// All paths are relative to BACKEND_URL (which may have a path prefix, e.g.
// https://crm.internal/api/v1). Every request carries Accept:
// application/json, X-Request-Id (the id of the profilecache request that
// caused it) and, when BACKEND_TOKEN is set, Authorization: Bearer <token>.
//
//	POST /authenticate            {"email": "...", "password": "..."}
//	  200 {"user_id": "<uuid>"}
//	  401 unknown email or wrong password (one answer for both; body ignored)
//
//	GET /users/{id}/basic
//	  200 {"id": "<uuid, must be {id}>", "email": "...", "created": "<RFC 3339>",
//	       "first_name", "last_name", "phone", "address_line", "postal_code",
//	       "city", "country" (ISO 3166-1 alpha-2): strings, optional,
//	       "marketing_permission": bool, optional (false)}
//
//	GET /users/{id}/interests
//	  200 ["cycling", "jazz", ...]
//
//	GET /users/{id}/orders           newest first, as shown
//	  200 [{"id", "number", "date", "status", "total", "currency",
//	        "item_count" (optional), "shipping_city" (optional)}, ...]
//
//	GET /users/{id}/invoices
//	  200 [{"id", "number", "date", "amount", "currency", "paid"}, ...]
//
//	GET /users/{id}/inquiries
//	  200 [{"id", "closed", "submitted", "description" (optional),
//	        "submitter_email" (optional), "submitter_name" (optional)}, ...]
//
// Money ("total", "amount") is an integer in minor units (cents): 1499 is
// 14.99. Dates are RFC 3339 strings ("2026-01-02T10:30:00Z"). Strings are
// UTF-8. Fields not listed as optional are required; unknown fields are
// ignored, so the CRM may send more. A list may be empty ([] or null). Item
// ids are unique within their list and at most 200 bytes.
//
// # Failure handling
//
// Each attempt has its own timeout (BACKEND_REQUEST_TIMEOUT). The GETs are
// idempotent and retried with exponential backoff and jitter, at most
// MaxAttempts times in all, on a connection error, a timeout, 429 or any
// 5xx (a Retry-After in seconds is honoured up to MaxBackoff); never on
// another 4xx or on a malformed body, which would only fail again.
// POST /authenticate is never retried: a password check is not ours to
// repeat, and CRMs count failed attempts.
//
// Errors wrap profile.ErrUnavailable when the CRM did not answer usefully in
// time (web: 503, "temporarily unavailable"), profile.ErrBadBackendResponse
// when it answered with something that breaks the contract above (bad JSON,
// a missing field, another user's data, a 404 or other unexpected status, a
// body over MaxBodyBytes; web: 503 naming the backend), and
// profile.ErrInvalidCredentials for a 401 from /authenticate.
package crm
