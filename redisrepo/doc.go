// Package redisrepo is everything in profilecache that speaks Redis: the
// profile cache (ProfileStore), the reload lock, the session tokens and
// their per-session data (TokenStore), and client construction.
//
// Layout: see keys.go. Every key of one user carries the hash tag
// {u:<uuid>}, so one user's writes are one MULTI/EXEC or one Lua call, also
// on Redis Cluster.
//
// Profiles are stored in generations: every key of a generation is written
// once and never modified, only deleted. A save writes a whole new
// generation and flips the user's meta hash to it in the same transaction
// that deletes the old one. Readers therefore read one consistent
// generation, and client-side cached entries of generation keys are never
// wrong, only possibly gone.
package redisrepo
