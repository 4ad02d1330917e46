// Command etcd: the etcd server from go.etcd.io/etcd/server/v3, for the e2e loop's local API server.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
