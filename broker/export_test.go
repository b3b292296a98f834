package broker

import "time"

// MaxPending is maxPending, for the tests.
const MaxPending = maxPending

// RateLimitClock replaces b's rate-limit clock: the budget then refills only when
// the test moves it, so the tests count publishes, never time.
func RateLimitClock(b *Broker, now func() time.Time) { b.auth.limit.now = now }

// RetainedTopics lists the topics b's server retains a message for.
func RetainedTopics(b *Broker) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var topics []string
	for t := range b.server.Topics.Retained.GetAll() {
		topics = append(topics, t)
	}
	return topics
}
