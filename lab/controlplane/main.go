// kubelab is one multi-call binary holding the upstream etcd, kube-apiserver and
// kube-controller-manager commands, so the lab builds one Go program from Go modules.
// Each component still runs as its own process: `kubelab etcd ...`, `kubelab kube-apiserver ...`.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	_ "time/tzdata" // CronJob time zones, as upstream's mains do

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

const usage = "usage: kubelab etcd|kube-apiserver|kube-controller-manager [flags]"

func main() {
	// Called through a symlink named after a component, or with the component as first argument.
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name != "etcd" && name != "kube-apiserver" && name != "kube-controller-manager" {
		if len(args) == 0 {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	switch name {
	case "etcd":
		etcdmain.Main(append([]string{"etcd"}, args...))
	case "kube-apiserver":
		os.Args = append([]string{name}, args...)
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Args = append([]string{name}, args...)
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	default:
		fmt.Fprintf(os.Stderr, "kubelab: unknown component %q\n%s\n", name, usage)
		os.Exit(2)
	}
}
