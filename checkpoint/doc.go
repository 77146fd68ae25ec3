// Package checkpoint opens Hugging Face checkpoints and writes them back.
//
// # Opening
//
// [Open] accepts a checkpoint directory — config.json plus either
// model.safetensors or model.safetensors.index.json and its shards — or a
// single .safetensors file (a config.json beside it is read when present).
// It validates every file before returning: the config ([ParseConfig]
// normalizes llama, mistral, qwen2 and gpt2 configs into a [Config]), the
// index (every shard name must stay inside the directory, every shard must
// exist, and tensors must be where the index says), and each safetensors
// header. Tensors are then read lazily by name from memory-mapped files;
// [Model.Names] lists them in natural order (layers.2 before layers.10).
//
// Errors name the file and wrap [ErrFormat] for malformed input or
// [ErrUnsupported] for input lmsparse cannot handle (an unknown
// model_type); safetensors errors wrap safetensors.ErrFormat.
//
// # Writing
//
// [WriteDir] writes a checkpoint directory: tensors as safetensors, sharded
// when they exceed the shard size (5 GB by default, as Hugging Face) with an
// index, plus the config, tokenizer and generation files of the input.
// Tensors stream one at a time, so memory stays bounded by the largest
// tensor a caller materializes, not by the model. [Stage] does the same for
// callers that write their own files (ONNX models).
//
// Both are built on [Output], which writers can use directly: [Create]
// checks the output directory OUT ([CheckOutput]: never the input directory
// or inside it, never a file, and a non-empty directory only with Force;
// refusals wrap [ErrOutput]), takes a lock and creates a staging directory
// .OUT.tmp-PID-N beside OUT; the files are written there
// ([Output.WriteTensors], [Output.CopyAux], [Output.WriteFile], or
// [Output.Path] for other writers), where the checkpoint can already be
// opened ([Output.Staging]); [Output.Commit] then makes the whole directory
// appear at once, and [Output.Abort] drops it, leaving OUT as it was.
//
// Commit:
//
//   - OUT absent: the staging directory is renamed to OUT (renameat2
//     RENAME_NOREPLACE where available).
//   - OUT exists (empty, or with Force): the entries of OUT that are not
//     lmsparse's are carried into the staging directory as hard links
//     (subdirectories are recreated, with their permissions and
//     modification times, around links to their files; a file that cannot
//     be linked is copied; OUT itself is not changed), the staging directory gets OUT's permissions, the two
//     directories are exchanged atomically (renameat2 RENAME_EXCHANGE),
//     the parent directory is synced, and the old content, now under the
//     staging name, is removed.
//   - lmsparse's files are those it writes: *.safetensors,
//     model.safetensors.index.json, lmsparse.json, report.json, report.md,
//     report.html, config.json, generation_config.json, tokenizer*.json,
//     tokenizer.model, special_tokens_map.json, added_tokens.json,
//     vocab.json, merges.txt, vocab.txt, LICENSE*, NOTICE, *.onnx and
//     *.onnx.data, and temporary files .NAME.tmp-* of these. Everything
//     else (other files, hidden files, subdirectories, even ones named like
//     lmsparse's files) is kept. Old lmsparse files the new output does not
//     write (shards of another count, a report of an earlier run) are
//     dropped: the new OUT is exactly the new output plus the other
//     entries. A subdirectory of OUT with the name of a file of the new
//     output is an error (ErrOutput), before anything changes.
//   - Never a mix: the files are synced before the switch, so after an
//     interruption at any point (even SIGKILL or a crash) OUT holds either
//     the complete old or the complete new output, with the other entries
//     in both cases. What an interrupted run leaves is a .OUT.tmp-PID-N
//     directory (and the lock file) beside OUT.
//   - OUT given as a symbolic link to a directory: that directory is
//     replaced, and the link kept.
//   - Without RENAME_EXCHANGE (kernels before 3.15, file systems without
//     it, systems other than Linux), Commit renames OUT to .OUT.old-PID-N,
//     the staging directory to OUT, and removes the old one. An
//     interruption between the two renames leaves no OUT and the complete
//     old output under .OUT.old-PID-N; if the second rename fails, the old
//     output is moved back, and the error names the backup when that fails.
//   - OUT that cannot be replaced as a whole — a mount point (a volume of a
//     container), or in a directory this process cannot write — is staged
//     inside itself: the lock is OUT/.lmsparse-lock, the staging directory
//     OUT/.lmsparse-tmp-PID-N, and Commit moves lmsparse's old files into
//     OUT/.lmsparse-old-PID-N, then the new ones into OUT, then removes the
//     backup; the other entries do not move. OUT never holds old and new
//     files together, but an interruption between the moves leaves it
//     incomplete, the rest being in those two directories (a failed move
//     is undone).
//
// Replacing an output needs room for both the old and the new one until
// the commit.
//
// The lock is an flock on .OUT.lmsparse-lock beside OUT, held from Create
// to Commit or Abort (the file is removed then): a second writer of the
// same OUT does not wait, Create fails at once with an error wrapping
// ErrOutput that names the holder's pid, and so does CheckOutput while
// another process holds the lock (without taking it). Where flock does not exist
// (Windows) there is no lock. Create also removes the .OUT.tmp-PID-N
// directories of runs whose process no longer exists, and reports that,
// and temporary directories it leaves (older versions', backups of the
// fallback), in [Output.Notes]; it prints nothing.
package checkpoint
