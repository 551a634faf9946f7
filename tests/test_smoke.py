import json


async def test_launch_serves_real_scalars_through_proxy(api, logdir, jp_base_url):
    job = await api.launch(logdir="logs")
    assert job["status"] in ("starting", "running")
    job = await api.wait_status(job["id"], "running")
    index = await api.proxied(job["id"], "")
    assert index.code == 200, index.body[:500]
    data = await api.proxied(
        job["id"], "data/plugin/scalars/scalars", params={"run": "run1", "tag": "loss"}
    )
    assert data.code == 200, data.body[:500]
    print(json.loads(data.body))
    await api.kill(job["id"])
    job = await api.job(job["id"])
    assert job["status"] == "killed"
