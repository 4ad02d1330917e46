"""The Pulumi program for every stack; `Pulumi.<env>.yaml` beside it picks the profile."""

from mlcluster.program import main

main()
