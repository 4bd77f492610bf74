module consul-xds/gen-hpack-huffman

go 1.26.0

require golang.org/x/net v0.63.0
