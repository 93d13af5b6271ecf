# SMEK — build, run and test.
#
#   make run        the SMEK server on its embedded defaults (builds what it needs)
#   make test       the whole test suite (builds the Kubernetes binaries first)
#   make lint       gofmt, go vet and staticcheck (CI runs it before the tests)
#   make dist       the action image's files for this machine's architecture,
#                   as the release lays them out; then docker build --target action .

KUBE_VERSION   := v1.36.3
KUBE_BIN       ?= $(CURDIR)/bin/kube
GO             ?= go
VERSION        ?= v0.0.0-dev
KUBE_LDFLAGS   := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=36 \
	-X k8s.io/component-base/version.gitTreeState=clean \
	-X k8s.io/client-go/pkg/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=36

KUBE_TOOLS := $(KUBE_BIN)/etcd $(KUBE_BIN)/kube-apiserver $(KUBE_BIN)/kube-controller-manager $(KUBE_BIN)/kubectl \
	$(KUBE_BIN)/kubelet $(KUBE_BIN)/kube-proxy $(KUBE_BIN)/kube-scheduler
# k3s's local-storage provisioner, run by the simulated k3s node
# (internal/fake/hcloudfake/k3snode). Its own module: see tools/localpath/tools.go.
LOCAL_PATH_PROVISIONER := $(KUBE_BIN)/local-path-provisioner
# CoreDNS, the cluster DNS of the local backend's nodes. Its own module: see
# tools/coredns/tools.go.
COREDNS := $(KUBE_BIN)/coredns

.PHONY: all build dist run node-deps test test-short bench fuzz kube-bin lint clean

all: build

build:
	$(GO) build -o bin/provisioner ./provisioner
	$(GO) build -o bin/smek ./action
	$(GO) build -o bin/smek-app ./app

## dist: the Linux CLI and the action image's root filesystem, built as the
## release builds them (tools/release), for the Dockerfile's action target.
dist:
	$(GO) run ./tools/release dist -version $(VERSION) -out dist linux/$$($(GO) env GOARCH)

## kube-bin: build etcd, kube-apiserver, kube-controller-manager, kubectl,
## and the node's kubelet, kube-proxy and kube-scheduler from the Go module
## proxy into $(KUBE_BIN) (about 14 minutes the first time on 2 cores,
## cached by the Go build cache afterwards), and
## local-path-provisioner for the nodes and the simulated k3s node (about 3
## minutes), and CoreDNS for the nodes (about 5 minutes).
kube-bin: $(KUBE_TOOLS) $(LOCAL_PATH_PROVISIONER) $(COREDNS)

$(COREDNS): tools/coredns/go.mod tools/coredns/go.sum
	@mkdir -p $(KUBE_BIN)
	cd tools/coredns && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(COREDNS) github.com/coredns/coredns

$(LOCAL_PATH_PROVISIONER): tools/localpath/go.mod tools/localpath/go.sum
	@mkdir -p $(KUBE_BIN)
	cd tools/localpath && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(LOCAL_PATH_PROVISIONER) github.com/rancher/local-path-provisioner

$(KUBE_TOOLS): tools/kube/go.mod tools/kube/go.sum
	@mkdir -p $(KUBE_BIN)
	cd tools/kube && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $(KUBE_BIN)/ \
		k8s.io/kubernetes/cmd/kube-apiserver \
		k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kubectl \
		k8s.io/kubernetes/cmd/kubelet \
		k8s.io/kubernetes/cmd/kube-proxy \
		k8s.io/kubernetes/cmd/kube-scheduler
	cd tools/kube && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(KUBE_BIN)/etcd go.etcd.io/etcd/server/v3
	@touch $(KUBE_TOOLS)

run: kube-bin node-deps
	$(GO) run ./provisioner serve

## node-deps: the Debian packages the local clusters' nodes need; as root it
## installs them, otherwise it prints the command (and the server runs
## clusters without a node that runs pods).
node-deps:
	@bash .ci/node-deps.sh || true

test: kube-bin
	$(GO) vet ./...
	SMEK_KUBE_BIN=$(KUBE_BIN) $(GO) test -race -count=1 -timeout 60m ./...

test-short:
	$(GO) test -race -short ./...

bench: kube-bin
	SMEK_KUBE_BIN=$(KUBE_BIN) $(GO) test -run '^$$' -bench . -benchtime 10x -count 1 -timeout 60m \
		./internal/server/ ./internal/sqlite/ ./action/ ./internal/githubapp/... ./internal/hetzner/ | tee bench.txt

## lint: gofmt, go vet and staticcheck, as CI runs them before the tests.
## tools/kube, tools/localpath and tools/coredns are their own modules: ./... skips them,
## and gofmt leaves them out too.
STATICCHECK_VERSION := v0.8.2
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck

lint: $(STATICCHECK)
	@out=$$(find . -name '*.go' -not -path './tools/kube/*' -not -path './tools/localpath/*' -not -path './bin/*' | xargs gofmt -l); \
		if [ -n "$$out" ]; then echo "gofmt -l: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

clean:
	rm -rf bin dist
