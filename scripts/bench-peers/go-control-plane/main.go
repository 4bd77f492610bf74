// Peer control plane for the fan-out benchmark (scripts/bench-fanout.ts): go-control-plane's
// snapshot cache and ADS server, as a user of the library would wire them. The one server
// answers both StreamAggregatedResources (its sotw package) and DeltaAggregatedResources (its
// delta package); Delta streams get per-resource versions from the cache's version map (a hash
// of each marshalled resource, computed once per snapshot when a Delta watch first needs it), so
// a new snapshot in which one ClusterLoadAssignment differs sends that one resource.
//
// In (stdin, one JSON object per line, from the bench driver):
//
//	{"op":"set","versions":{typeUrl: version},"resources":{typeUrl: [base64 google.protobuf.Any]}}
//	{"op":"gc"}
//
// Out (stdout, one JSON object per line):
//
//	{"op":"listening","port":N}                 once the gRPC server is bound on 127.0.0.1
//	{"op":"set","publishNs":"T"}                 T = CLOCK_MONOTONIC just before SetSnapshot
//	{"op":"gc"}                                 after runtime.GC + FreeOSMemory
//
// The driver sends the Any bytes our snapshot holds, so both servers hand out the same
// configuration; here they are unmarshalled into go-control-plane's typed messages once per
// snapshot, as a Go control plane holds them (it marshals them again for every response). Publish time is read from
// CLOCK_MONOTONIC because Node's process.hrtime reads the same kernel clock, so the driver and
// the load generator can compare it with their own stamps without an offset.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resource "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	server "github.com/envoyproxy/go-control-plane/pkg/server/v3"
)

// group puts every simulated client in one snapshot group, like our SnapshotCache group: the
// same snapshot serves all nodes, and one SetSnapshot reaches every stream.
type group struct{}

func (group) ID(*core.Node) string { return "bench" }

type command struct {
	Op        string              `json:"op"`
	Versions  map[string]string   `json:"versions"`
	Resources map[string][]string `json:"resources"`
}

func newMessage(typeURL string) (proto.Message, error) {
	switch typeURL {
	case resource.ClusterType:
		return &cluster.Cluster{}, nil
	case resource.EndpointType:
		return &endpoint.ClusterLoadAssignment{}, nil
	case resource.ListenerType:
		return &listener.Listener{}, nil
	case resource.RouteType:
		return &route.RouteConfiguration{}, nil
	}
	return nil, fmt.Errorf("unsupported type url %q", typeURL)
}

// snapshotOf builds a snapshot with one version per type (the driver's content hashes), so an
// unchanged type is not pushed again, the same rule our cache follows.
func snapshotOf(cmd command) (*cache.Snapshot, error) {
	snap := &cache.Snapshot{}
	for typeURL, encoded := range cmd.Resources {
		items := make([]types.Resource, 0, len(encoded))
		for i, b64 := range encoded {
			raw, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", typeURL, i, err)
			}
			var packed anypb.Any
			if err := proto.Unmarshal(raw, &packed); err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", typeURL, i, err)
			}
			if packed.GetTypeUrl() != typeURL {
				return nil, fmt.Errorf("%s[%d]: packed as %q", typeURL, i, packed.GetTypeUrl())
			}
			msg, err := newMessage(typeURL)
			if err != nil {
				return nil, err
			}
			if err := packed.UnmarshalTo(msg); err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", typeURL, i, err)
			}
			items = append(items, msg)
		}
		index := cache.GetResponseType(typeURL)
		if index == types.UnknownType {
			return nil, fmt.Errorf("unknown type url %q", typeURL)
		}
		snap.Resources[index] = cache.NewResources(cmd.Versions[typeURL], items)
	}
	return snap, snap.Consistent()
}

func monotonicNs() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

func reply(out *json.Encoder, v map[string]any) {
	if err := out.Encode(v); err != nil {
		fmt.Fprintln(os.Stderr, "stdout:", err)
		os.Exit(1)
	}
}

func main() {
	ctx := context.Background()
	snapshots := cache.NewSnapshotCache(true, group{}, nil)
	xds := server.NewServer(ctx, snapshots, nil)

	grpcServer := grpc.NewServer(grpc.MaxConcurrentStreams(1 << 20))
	discovery.RegisterAggregatedDiscoveryServiceServer(grpcServer, xds)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	go func() {
		if err := grpcServer.Serve(lis); err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
	}()

	out := json.NewEncoder(os.Stdout)
	reply(out, map[string]any{"op": "listening", "port": lis.Addr().(*net.TCPAddr).Port})

	var next *cache.Snapshot
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<28)
	for in.Scan() {
		var cmd command
		if err := json.Unmarshal(in.Bytes(), &cmd); err != nil {
			fmt.Fprintln(os.Stderr, "bad command:", err)
			os.Exit(1)
		}
		switch cmd.Op {
		case "prepare":
			snap, err := snapshotOf(cmd)
			if err != nil {
				fmt.Fprintln(os.Stderr, "snapshot:", err)
				os.Exit(1)
			}
			next = snap
			reply(out, map[string]any{"op": "prepare"})
		case "publish":
			if next == nil {
				fmt.Fprintln(os.Stderr, "publish before prepare")
				os.Exit(1)
			}
			publishNs := monotonicNs()
			if err := snapshots.SetSnapshot(ctx, "bench", next); err != nil {
				fmt.Fprintln(os.Stderr, "set snapshot:", err)
				os.Exit(1)
			}
			// A string: nanoseconds since boot may exceed what a JSON number keeps exactly.
			reply(out, map[string]any{"op": "publish", "publishNs": fmt.Sprint(publishNs)})
		case "gc":
			runtime.GC()
			debug.FreeOSMemory()
			reply(out, map[string]any{"op": "gc"})
		default:
			fmt.Fprintln(os.Stderr, "unknown op:", cmd.Op)
			os.Exit(1)
		}
	}
	// stdin closed: the driver is done (or gone).
	grpcServer.Stop()
}
