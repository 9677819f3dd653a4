// Package session lets a Go service that is not profilecache accept
// profilecache's sessions and read the profiles profilecache caches,
// straight from the same Redis: no call to profilecache, and, once warm,
// no Redis command either (Redis's client-side caching, as profilecache
// itself uses it).
//
//	v, err := session.New(session.Config{
//		RedisURL: os.Getenv("REDIS_URL"),              // profilecache's REDIS_URL
//		Secret:   []byte(os.Getenv("SESSION_SECRET")), // and its SESSION_SECRET
//	})
//	...
//	http.ListenAndServe(addr, v.Middleware(mux)) // 401 JSON without a live session
//
//	// in a handler:
//	id, _ := session.FromContext(r.Context())
//	basic, err := v.Basic(r.Context(), id.UserID)
//
// A session is checked exactly as profilecache checks it, by the same code:
// the JWT's signature (SESSION_SECRET, or SESSION_SECRET_PREVIOUS during a
// rotation) and expiry, then the session's record in Redis, which must
// exist, belong to the JWT's user and be within TOKEN_TTL (idle) and
// SESSION_MAX_AGE (absolute). A logout, a revoke or a logout-all on
// profilecache ends the session here too: the record is gone, and Redis
// invalidates this process's cached copy within a millisecond or so.
//
// Sliding expiry: a request accepted here counts as activity and slides
// the session's idle expiry, as a request to profilecache does (at most one
// write a minute per session), so that a user busy only on this service is
// not signed out after TOKEN_TTL. Set Config.ReadOnly to write nothing
// (a read-only Redis user, a replica): sessions then expire after TOKEN_TTL
// of inactivity on profilecache, whatever happens here. Either way, set
// TokenTTL and MaxAge to profilecache's TOKEN_TTL and SESSION_MAX_AGE when
// they are not the defaults.
//
// Profiles: Read and Basic return what profilecache cached. This package
// never calls the CRM: a profile that is not in Redis (evicted, or
// deleted by a change webhook a moment ago) is ErrNotCached, and
// profilecache loads it again on its next request for that user.
//
// # Stability
//
// The API other services may rely on is this package, package
// sessionecho (echo v4 middleware on top of it) and the profile data types
// their methods return (profile.Basic, profile.Query, profile.View,
// profile.Page, profile.Slice and the item types). Everything else in the
// module (auth, redisrepo, web, the internal packages) is profilecache's own
// and may change in any release. The Redis key layout and the JWT format
// are not part of the API either: use this package, not the keys.
package session
