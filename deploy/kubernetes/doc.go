// Package kubernetes holds no code: this directory is the Kubernetes
// deployment of sharded runs (see README.md, "Past one machine") —
// eval-shards.yaml, an Indexed Job whose pod i runs
// "lmsparse eval … --shard i/n --partial /parts/part-i.json";
// eval-merge.yaml, the Job that runs "lmsparse merge-eval" on the parts;
// sweep-shards.yaml, an Indexed Job whose pod i runs
// "lmsparse compress … --sweep … --shard i/n --partial /parts/sweep-i.json"
// (pod 0 writes the checkpoint into /parts/out); sweep-merge.yaml, the Job
// that runs "lmsparse report --merge" on those parts into /parts/out;
// calib-shards.yaml, an Indexed Job whose pod i runs "lmsparse prune …
// --method sparsegpt --shard i/n -o /parts/calib-part-i.safetensors"
// (calibration pruning of a range of blocks, the independent pipeline);
// calib-merge.yaml, the Job that runs "lmsparse merge-shards" on those
// parts into the checkpoint;
// pvc.yaml, the volumes for the inputs and the parts; and Dockerfile, the
// image (a static binary, CGO_ENABLED=0, on an empty base).
//
// Its tests (manifests_test.go for eval and sweeps, calib_test.go for
// calibration) decode every manifest strictly into the Kubernetes API types
// (k8s.io/api, through sigs.k8s.io/yaml: unknown fields are errors), checks
// each Indexed Job's shape and that the pods' command lines are the ones the
// README documents, and runs those command lines as separate processes the
// way the kubelet would (JOB_COMPLETION_INDEX set, $(VAR) expanded) on the
// demo model, checking that the merged output is the one-machine run's:
// the eval report, the sweep's checkpoint and reports, and the calibration
// checkpoint of "prune --independent", file for file.
// k8s.io/api is imported by that test only, so no lmsparse package depends
// on it.
package kubernetes
