// Package redisrepo is everything in profilecache that speaks Redis: the
// profile cache (ProfileStore), the reload lock, the session tokens and
// their per-session data (TokenStore), and client construction.
//
// Layout: see keys.go. Every key of one user carries the hash tag
// {u:<uuid>}, so one user's keys live on one node and one Lua call may
// touch several of them, also on Redis Cluster.
//
// Profiles are stored in generations: every key of a generation is written
// once and never modified, only deleted. A save writes a whole new
// generation in bounded batches, invisible until one O(1) script points the
// user's meta hash at it, and then deletes the old one in bounded batches
// (generation.go): no call grows with the size of a profile, so no user's
// save holds up the others' commands. Readers therefore read one consistent
// generation, and client-side cached entries of generation keys are never
// wrong, only possibly gone.
//
// Meta points each section at its generation (issue 12): a whole save
// points every section at its new one; a section reload
// (profile_section.go) writes a generation holding that section only and
// moves that section's pointer alone, with a compare-and-set that loses to
// anything newer. A reader reads each section whole from one generation.
// Waiters for a reload are woken by the lock key's invalidation (wake.go).
package redisrepo
