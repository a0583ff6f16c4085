"""The cluster store: one `ClusterStore` protocol (`types`), its etcd implementation (`etcd`), an in-memory one
for unit tests of components (`memory`), the etcd member supervisor (`member`) and the conformance suite
(`testsuite`) every implementation passes."""
