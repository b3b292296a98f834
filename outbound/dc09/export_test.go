package dc09

import "time"

// SetHook lets tests learn when the Link armed a timer ("timeout", "backoff",
// "linktest") and for how long, or ignored a reply ("ignored"), so they advance
// the fake clock only once it is waiting on it.
func SetHook(l *Link, f func(event string, d time.Duration)) { l.hook = f }
