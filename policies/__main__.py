"""CrossGuard pack: `pulumi preview --policy-pack policies [--policy-pack-config <(mlcluster policy-config …)]`.

Every rule of mlcluster.policy becomes a policy: high severity blocks the update, medium and low warn.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from mlcluster.policy.crossguard import policies

PolicyPack(name="mlcluster", policies=policies(), enforcement_level=EnforcementLevel.ADVISORY,
           description="mlcluster guardrails: encryption, IMDSv2, private endpoints, least-privilege IAM, "
                       "protected data, pinned charts, GPU taints, team isolation and quotas.")
