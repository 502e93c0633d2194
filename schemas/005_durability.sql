-- Durability of committed parts. Senders are acknowledged only after an insert commits, so a committed
-- part must be on disk: its files and directory are fsynced after inserts and after merges. Parts a merge
-- replaced stay on disk for old_parts_lifetime (ClickHouse's default; the embedded engine's own default is
-- 0): a merge that hit a full disk can commit a part with empty files, and then its source parts are what
-- restores the data (llmrel verifies recent parts after a disk incident and reloads the table from them).
-- Inserts are refused by the engine below the free-space reserve (LLMREL_MIN_FREE_DISK_MIB), whoever
-- sends them.
ALTER TABLE ${db}.otel_traces ${on_cluster} MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_compressed_bytes_to_fsync_after_merge = 1,
    old_parts_lifetime = 480, min_free_disk_bytes_to_perform_insert = ${min_free_disk_bytes};
ALTER TABLE ${db}.otel_traces_trace_id_ts ${on_cluster} MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_compressed_bytes_to_fsync_after_merge = 1,
    old_parts_lifetime = 480, min_free_disk_bytes_to_perform_insert = ${min_free_disk_bytes};
ALTER TABLE ${db}.llm_calls ${on_cluster} MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_compressed_bytes_to_fsync_after_merge = 1,
    old_parts_lifetime = 480, min_free_disk_bytes_to_perform_insert = ${min_free_disk_bytes};
ALTER TABLE ${db}.llm_findings ${on_cluster} MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_compressed_bytes_to_fsync_after_merge = 1,
    old_parts_lifetime = 480, min_free_disk_bytes_to_perform_insert = ${min_free_disk_bytes};
ALTER TABLE ${db}.llm_analyzer_state ${on_cluster} MODIFY SETTING
    fsync_after_insert = 1, fsync_part_directory = 1, min_compressed_bytes_to_fsync_after_merge = 1,
    old_parts_lifetime = 480;
