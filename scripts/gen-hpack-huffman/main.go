// Prints src/proxy/codec/http2/huffman-table.ts: the HPACK Huffman code (RFC 7541 Appendix B)
// recovered from golang.org/x/net/http2/hpack's encoder output, not copied from any table.
// For each symbol c it encodes "0"x40 + c + "0"x8 ('0' has the 5-bit code 00000): the bits are
// 200 zeros, c's code, 40 zeros, then 0-7 padding ones. Stripping the trailing ones, the 40 zeros
// and the first 200 bits leaves c's code. EOS (256) is not encodable; RFC 7541 5.2 fixes it as 30 ones.
// The code is canonical; the generator checks that before printing.
// Run: bash scripts/gen-hpack-huffman/gen.sh
package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/net/http2/hpack"
)

func bitsOf(b []byte) string {
	var sb strings.Builder
	for _, x := range b {
		fmt.Fprintf(&sb, "%08b", x)
	}
	return sb.String()
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "gen-hpack-huffman: "+format+"\n", a...)
	os.Exit(1)
}

// writeArray prints a TS array constant, perRow numbers a row.
func writeArray(out *strings.Builder, name string, words []string, perRow int) {
	fmt.Fprintf(out, "// biome-ignore format: one row per %d symbols reads better than one number per line\n", perRow)
	fmt.Fprintf(out, "export const %s: readonly number[] = [\n", name)
	for i := 0; i < len(words); i += perRow {
		row := words[i:min(i+perRow, len(words))]
		fmt.Fprintf(out, "  %s,\n", strings.Join(row, ", "))
	}
	out.WriteString("];\n")
}

func main() {
	codes := make([]uint32, 257)
	lengths := make([]int, 257)
	for c := 0; c < 256; c++ {
		in := strings.Repeat("0", 40) + string([]byte{byte(c)}) + strings.Repeat("0", 8)
		bits := bitsOf(hpack.AppendHuffmanString(nil, in))
		bits = strings.TrimRight(bits, "1")
		if !strings.HasPrefix(bits, strings.Repeat("0", 200)) {
			fail("symbol %d: output does not start with 200 zero bits", c)
		}
		// c's code may end in ones, but 40 zero bits follow it, so TrimRight stops before it.
		if !strings.HasSuffix(bits, strings.Repeat("0", 40)) {
			fail("symbol %d: output does not end with 40 zero bits", c)
		}
		code := bits[200 : len(bits)-40]
		if len(code) < 5 || len(code) > 30 {
			fail("symbol %d: code length %d out of range", c, len(code))
		}
		var v uint32
		for _, ch := range code {
			v = v<<1 | uint32(ch-'0')
		}
		codes[c], lengths[c] = v, len(code)
		// Cross-check: the library's own length computation agrees.
		if got := hpack.HuffmanEncodeLength(string([]byte{byte(c)})); int(got) != (len(code)+7)/8 {
			fail("symbol %d: HuffmanEncodeLength %d vs %d bits", c, got, len(code))
		}
	}
	codes[256], lengths[256] = (1<<30)-1, 30
	// Canonical check: sorted by (length, symbol), each code is the previous + 1, shifted left by the
	// length difference.
	var prevCode uint64
	prevLen := 0
	first := true
	for l := 1; l <= 30; l++ {
		for s := 0; s < 257; s++ {
			if lengths[s] != l {
				continue
			}
			want := uint64(0)
			if !first {
				want = (prevCode + 1) << uint(l-prevLen)
			}
			if uint64(codes[s]) != want {
				fail("not canonical at symbol %d (length %d): code %b, want %b", s, l, codes[s], want)
			}
			prevCode, prevLen, first = uint64(codes[s]), l, false
		}
	}
	var out strings.Builder
	out.WriteString("// The HPACK Huffman code (RFC 7541 Appendix B): bit lengths and codes (MSB-first, right-aligned) of\n")
	out.WriteString("// symbols 0-255 and EOS (256). Generated from golang.org/x/net/http2/hpack v0.63.0's encoder output by\n")
	out.WriteString("// scripts/gen-hpack-huffman (see main.go for the method). Do not edit; regenerate with:\n")
	out.WriteString("//   bash scripts/gen-hpack-huffman/gen.sh\n\n")
	lengthWords := make([]string, 257)
	codeWords := make([]string, 257)
	for i := range lengths {
		lengthWords[i] = fmt.Sprintf("%d", lengths[i])
		codeWords[i] = fmt.Sprintf("0x%x", codes[i])
	}
	writeArray(&out, "HUFFMAN_LENGTHS", lengthWords, 16)
	out.WriteString("\n")
	writeArray(&out, "HUFFMAN_CODES", codeWords, 8)
	fmt.Print(out.String())
}
