// The peer of scripts/bench-hpack.ts: golang.org/x/net/http2/hpack (grpc-go's HPACK) timing the
// same gRPC request header block, so our HPACK's ns/op can be read next to a native implementation's.
// Arguments: the hex of our encoder's cold (first) and warm (repeated) blocks, decoded here too, and
// the iteration count. Prints one JSON line: ns per operation for each case.
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"golang.org/x/net/http2/hpack"
)

var fields = []hpack.HeaderField{
	{Name: ":method", Value: "POST"},
	{Name: ":scheme", Value: "http"},
	{Name: ":path", Value: "/consulxds.bench.Echo/Unary"},
	{Name: ":authority", Value: "localhost:10000"},
	{Name: "content-type", Value: "application/grpc"},
	{Name: "te", Value: "trailers"},
	{Name: "grpc-accept-encoding", Value: "identity,deflate,gzip"},
	{Name: "user-agent", Value: "grpc-go/1.70.0"},
}

var sink int

// median ns/op over 7 rounds of n calls of f.
func measure(n int, f func()) float64 {
	rounds := make([]float64, 7)
	for r := range rounds {
		start := time.Now()
		for i := 0; i < n; i++ {
			f()
		}
		rounds[r] = float64(time.Since(start).Nanoseconds()) / float64(n)
	}
	sort.Float64s(rounds)
	return rounds[3]
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: go-hpack COLD_HEX WARM_HEX ITERATIONS")
		os.Exit(2)
	}
	cold, err1 := hex.DecodeString(os.Args[1])
	warm, err2 := hex.DecodeString(os.Args[2])
	n, err3 := strconv.Atoi(os.Args[3])
	if err1 != nil || err2 != nil || err3 != nil {
		fmt.Fprintln(os.Stderr, "go-hpack: bad arguments")
		os.Exit(2)
	}
	count := func(hpack.HeaderField) { sink++ }
	var buf bytes.Buffer
	warmEnc := hpack.NewEncoder(&buf)
	for _, f := range fields {
		_ = warmEnc.WriteField(f)
	}
	warmDec := hpack.NewDecoder(4096, count)
	if _, err := warmDec.Write(cold); err != nil {
		fmt.Fprintln(os.Stderr, "go-hpack: cannot decode the cold block:", err)
		os.Exit(1)
	}
	out := map[string]float64{
		"encodeWarm": measure(n, func() {
			buf.Reset()
			for _, f := range fields {
				_ = warmEnc.WriteField(f)
			}
			sink += buf.Len()
		}),
		"encodeCold": measure(n, func() {
			var b bytes.Buffer
			e := hpack.NewEncoder(&b)
			for _, f := range fields {
				_ = e.WriteField(f)
			}
			sink += b.Len()
		}),
		"decodeWarm": measure(n, func() {
			if _, err := warmDec.Write(warm); err != nil {
				panic(err)
			}
		}),
		"decodeCold": measure(n, func() {
			d := hpack.NewDecoder(4096, count)
			if _, err := d.Write(cold); err != nil {
				panic(err)
			}
		}),
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
}
