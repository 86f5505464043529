"""Earlier implementations of tools whose output changed, kept only so that stored calls
replay bit-identically (``imagent replay --verify``).

A stored call of such a tool names the implementation that made it (``impl``; the numbers and
what each one is are ``tools/registry.py`` ``IMPLS``); a call stored without it was made by
imagent 0.1.0 (commit 5fa86c6) and is ``impl: 1``. The modules here hold the code of impl 1
where it differs from today's, taken verbatim from that commit:

* ``global_edit_v1``: the float32 colour operations;
* ``outpaint_v1``: the embedded (PatchMatch) outpaint.

remove's impl 1 needs no copy: it is today's code path without the face avoid mask
(``tools/remove.py`` ``avoid_faces``). Model backends did not change and have no legacy code.
"""
