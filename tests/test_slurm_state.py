"""Reading what Slurm and Sisyphus say (the lines are copied from Slurm 22.05 and Sisyphus runs on this machine);
the watch itself runs against a real cluster in test_slurm_cluster.py."""

from __future__ import annotations

from jobs.slurm_state import (
    describe_end,
    down_nodes_blocking,
    gres_types,
    parse_nodes,
    parse_queue,
    parse_scontrol_job,
    submitted_tasks,
)

TIMEOUT_JOB = ("JobId=2 ArrayJobId=2 ArrayTaskId=1 JobName=arr UserId=root(0) GroupId=root(0) MCS_label=N/A "
               "Priority=4294901758 Nice=0 Account=(null) QOS=(null) JobState=TIMEOUT Reason=TimeLimit "
               "Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:15 RunTime=00:01:18 "
               "TimeLimit=00:01:00 TimeMin=N/A SubmitTime=2026-12-04T02:37:28 Partition=main "
               "WorkDir=/tmp/a dir StdOut=/tmp/slurm-2_1.out Power= ")


def test_an_ended_job_is_described_with_slurm_s_state_reason_and_limit():
    fields = parse_scontrol_job(TIMEOUT_JOB)
    assert fields["WorkDir"] == "/tmp/a dir" and fields["Power"] == ""
    assert describe_end(fields) == ("TIMEOUT (over its time limit, reason TimeLimit): time limit 00:01:00, ran "
                                    "00:01:18, exit code 0:15")
    assert describe_end({**fields, "JobState": "NODE_FAIL", "Reason": "None"}) == (
        "NODE_FAIL (its node failed), exit code 0:15")
    assert describe_end({**fields, "JobState": "COMPLETED"}) is None
    assert describe_end({**fields, "JobState": "RUNNING"}) is None


def test_submitted_tasks_come_from_sisyphus_submit_logs(tmp_path):
    job = tmp_path / "work/jobs/bisect_jobs/TrainJob.ryT1KCj36Yge"
    job.mkdir(parents=True)
    (job / "submit_log.run").write_text(
        "([1], {'cpu': 1, 'mem': 4.0, 'gpu': 0, 'time': 1.0, 'engine_info': [([1], '5')], 'engine_name': 'slurm', "
        "'completed_fraction': None})\n"
        "([1], {'cpu': 1, 'mem': 4.0, 'gpu': 0, 'time': 2.0, 'engine_info': [([1], '11')], 'engine_name': 'slurm', "
        "'completed_fraction': None})\n")
    mini = tmp_path / "work/jobs/bisect_jobs/WriteHybridJob.hETCTUP4THI0"
    mini.mkdir(parents=True)
    (mini / "submit_log.run").write_text("([1], {'engine': 'short', 'engine_info': {'pid': 12}, "
                                         "'engine_name': 'local'})\n")
    tasks = submitted_tasks(tmp_path / "work")
    assert set(tasks) == {"5", "11"}
    assert tasks["11"].job == "jobs/bisect_jobs/TrainJob.ryT1KCj36Yge" and tasks["11"].task == "run"


SINFO = """gpu01|gpu|down*|Not responding
gpu02|gpu|drained|bad gpu
cpu01|main*|idle|none
cpu02|main*|mixed|none
cpu02|gpu|mixed|none
"""


def test_pending_jobs_are_blocked_only_when_every_node_of_their_partition_is_down():
    nodes = parse_nodes(SINFO)
    assert [n.name for n in nodes if not n.usable] == ["gpu01", "gpu02"]
    queue = parse_queue("12|PENDING|gpu|ReqNodeNotAvail\n13|RUNNING|main|None\n14|PENDING|main|Resources\n")
    assert down_nodes_blocking(queue, nodes) == {}  # cpu02 is also in gpu
    without_cpu02 = [n for n in nodes if n.name != "cpu02"]
    blocked = down_nodes_blocking(queue, without_cpu02)
    assert list(blocked) == ["12"] and [n.state for n in blocked["12"]] == ["down*", "drained"]
    everything_down = parse_nodes("localhost|main*|down|config-bisect test\n")
    assert list(down_nodes_blocking(parse_queue("7|PENDING|main|Nodes required for job are DOWN\n"),
                                    everything_down)) == ["7"]


def test_gres_types_of_sinfo():
    assert gres_types("gpu:1080ti:4(S:0-1)\ngpu:a100:2,gpu:v100:1\n(null)\n") == ["1080ti", "a100", "v100"]
    assert gres_types("(null)\n") == []
