//go:build race

package evidence

// raceEnabled shrinks the hostile extracts under the race detector, which
// runs this code about twenty times slower; the shapes stay the same.
const raceEnabled = true
