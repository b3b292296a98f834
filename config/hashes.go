package config

import (
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/vakt/vakt/drivers"
)

// Requirement S1 for staff login secrets, outside demo mode:
//
//   - a plain secret is not a sample value and has at least minSecretLen characters;
//   - a secret_hash is not one printed in Vakt's documentation or examples (its
//     secret may be printed next to it, or guessed by anyone who reads it);
//   - a secret_hash has a bcrypt cost of at least minHashCost;
//   - a secret_hash is not the hash of a sample secret. Checking that costs one
//     bcrypt comparison per sample per hash: about 70 ms each at cost 10 on our
//     2-core test machine (several times more on a Pi), i.e. over a second per staff
//     member, against a start-up budget of 300 ms for the whole gateway (P4) at
//     sites listing dozens of staff. So Load, which every start runs, does not do it;
//     Check (what `gateway check-config` runs before a deployment) does, for every
//     hash, on every core. Refusing cheap costs at every start is what keeps the
//     gap small: a cost-4 hash (what some scripts produce, and what the gateway
//     itself uses for demo secrets) would be cheap to compare, but is just as
//     cheap to brute-force from a leaked file, so it is refused outright.
const (
	minSecretLen = 8
	minHashCost  = bcrypt.DefaultCost // 10
	// maxHashCost bounds the work of one login (and of Check): cost 14 takes over a
	// second here and several on a Pi; every cost step doubles it.
	maxHashCost = 14
)

// printedHashes are the bcrypt hashes printed in docs/ and config/examples/ (and the
// README). TestPrintedHashesListed greps those files, so a newly printed hash
// cannot be missed here.
var printedHashes = map[string]bool{
	"$2a$12$aGbG21dLF87ds.Vuxcqiku73h/Je.EbPwGrzOjutOiAZqgw5a8fLi": true, // docs/configuration.md, site.yaml
	"$2a$12$Fa4AelykgLL/zUZq4KpFP.ri6lftoNPa3/n9TgiSaJ8MLGmKp45cy": true, // site.yaml
}

// compareHash is bcrypt's comparison; a test counts the calls.
var compareHash = bcrypt.CompareHashAndPassword

// hashHowTo tells how to make a hash of a real secret without putting it in the shell
// history (htpasswd prompts for it).
const hashHowTo = `htpasswd -nBC 12 "" | cut -d: -f2`

// bcryptCost returns the cost of a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters),
// or ok false when h is not one.
func bcryptCost(h string) (cost int, ok bool) {
	if len(h) != 60 || !(strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$")) || h[6] != '$' {
		return 0, false
	}
	cost, err := strconv.Atoi(h[4:6])
	if err != nil || cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return 0, false
	}
	return cost, true
}

// secretHash applies S1 to a staff member's secret_hash (see above); the slow
// comparison against the sample secrets is sampleHashes, run by Check.
func (v *validator) secretHash(path, h string) {
	cost, ok := bcryptCost(h)
	switch {
	case !ok:
		v.errorf(path, "not a bcrypt hash (want 60 characters starting with $2a$, $2b$ or $2y$ and a cost of 04 to 31)")
	case cost > maxHashCost:
		v.errorf(path, "bcrypt cost %d is too slow: each login would take seconds to days of CPU; hash the secret again with cost %d to %d (%s)", cost, minHashCost, maxHashCost, hashHowTo)
	case v.demo():
	case printedHashes[h]:
		v.errorf(path, "this hash is printed in Vakt's documentation or examples, so its secret is not secret; refused outside demo mode: hash the staff member's own secret (%s)", hashHowTo)
	case cost < minHashCost:
		v.errorf(path, "bcrypt cost %d is too cheap outside demo mode (a leaked file could be brute-forced); hash the secret again with cost %d to %d (%s)", cost, minHashCost, maxHashCost, hashHowTo)
	}
}

// sampleHashes compares every staff secret_hash that passed validation against the
// sample secrets, spreading the comparisons over all cores, and reports the hashes of
// a sample secret. Outside demo mode only; see the comment at the top of this file
// for why Load does not do this.
func sampleHashes(c *Config, line func(string) int) Errors {
	if c.Site.Demo {
		return nil
	}
	type job struct {
		hash   string
		secret string
	}
	paths := map[string][]string{} // hash → the keys that have it
	var hashes []string
	for i, s := range c.Staff {
		// Only the hashes secretHash accepted: a cost above maxHashCost could take
		// days to compare.
		if cost, ok := bcryptCost(s.SecretHash); ok && cost >= minHashCost && cost <= maxHashCost && !printedHashes[s.SecretHash] && !s.Secret.IsSet() {
			p := drivers.Index("staff", i) + ".secret_hash"
			if paths[s.SecretHash] == nil {
				hashes = append(hashes, s.SecretHash)
			}
			paths[s.SecretHash] = append(paths[s.SecretHash], p)
		}
	}
	jobs := make(chan job)
	var (
		mu      sync.Mutex
		matched = map[string]bool{}
		wg      sync.WaitGroup
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range jobs {
				mu.Lock()
				done := matched[j.hash]
				mu.Unlock()
				if !done && compareHash([]byte(j.hash), []byte(j.secret)) == nil {
					mu.Lock()
					matched[j.hash] = true
					mu.Unlock()
				}
			}
		})
	}
	for _, h := range hashes {
		for _, s := range sampleSecrets {
			jobs <- job{h, s}
		}
	}
	close(jobs)
	wg.Wait()

	var errs Errors
	for _, h := range hashes {
		if !matched[h] {
			continue
		}
		for _, p := range paths[h] {
			e := &Error{Path: p, Msg: "a hash of a sample secret is refused outside demo mode; set a real secret and hash it (" + hashHowTo + ")"}
			if line != nil {
				e.Line = line(p)
			}
			errs = append(errs, e)
		}
	}
	return errs
}
