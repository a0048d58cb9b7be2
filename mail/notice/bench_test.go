package notice

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkParse parses the fifteen AWS samples in turn; notices/s is the
// figure the README quotes (goal: 20,000 per second per core).
func BenchmarkParse(b *testing.B) {
	files, _ := filepath.Glob("testdata/s*.eml")
	if len(files) == 0 {
		b.Skip("no samples in testdata")
	}
	var mails [][]byte
	var total int64
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		mails = append(mails, raw)
		total += int64(len(raw))
	}
	b.SetBytes(total / int64(len(mails)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Parse(mails[i%len(mails)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notices/s")
}
