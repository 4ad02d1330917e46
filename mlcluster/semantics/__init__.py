"""What the cluster's own code does with the objects we write, as small, cited Python models.

Our earlier tests checked the *shape* of what we render; these modules compute its *effect*, following the
upstream source at the versions we pin (each function names the file it mirrors): API-server defaulting and
LimitRanger admission (`limits`), what Kueue counts for a workload (`limits.kueue_requests`), … Tests and
`mlcluster check` evaluate renders with them. The real-engine loop (`make e2e`, `make journey`) checks the
same properties against a real API server and real controllers where the toolchain is built.
"""
