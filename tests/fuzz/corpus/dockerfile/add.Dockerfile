# ADD: local tar archives (plain and gzip) are unpacked; other files are copied.
FROM rollout-test/busybox:1
ADD plain.tar /unpacked/
ADD archive.tar.gz /unpacked-gz
ADD notes.txt /notes/
ADD --chown=3:4 dir /added-dir
ADD --chmod=700 notes.txt /notes-700
