package dc09

// SetHook lets tests learn when the Link armed a timer ("timeout", "backoff",
// "linktest"), so they advance the fake clock only once it is waiting on it.
func SetHook(l *Link, f func(event string)) { l.hook = f }
