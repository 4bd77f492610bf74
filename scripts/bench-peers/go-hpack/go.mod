module consul-xds/bench-peers/go-hpack

go 1.26.0

require golang.org/x/net v0.63.0
