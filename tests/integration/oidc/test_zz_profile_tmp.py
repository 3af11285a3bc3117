import cProfile, pstats, time, io, os
from sqlalchemy import event
from tests.flows import Pkce, authorize_params, follow_to_code, REDIRECT_URI
from tests.integration.oidc.helpers import redeem, refresh

import base64
def token_request_to(client, url, data, auth):
    raw = f'{auth[0]}:{auth[1]}'.encode()
    return client.post(url, data=data, headers={'Authorization': 'Basic ' + base64.b64encode(raw).decode()})

N = int(os.environ.get("PN", "300"))

def test_profile_token(app, client, rp, logged_in):
    pairs = []
    for _ in range(N):
        pkce = Pkce.new()
        params = authorize_params(rp.client_id, pkce)
        pairs.append((follow_to_code(client, params)["code"], pkce.verifier))
    engine = app.extensions["idp.engine"]
    stmts = []
    event.listen(engine, "before_cursor_execute", lambda c, cur, s, *a: stmts.append(s))
    prof = cProfile.Profile()
    t0 = time.process_time()
    prof.enable()
    for code, verifier in pairs:
        r = redeem(client, rp, code, verifier)
        assert r.status_code == 200
    prof.disable()
    cpu = (time.process_time() - t0) / N * 1000
    print(f"\nredeem CPU ms/req {cpu:.3f}  statements/req {len(stmts)/N:.1f}")
    for s in stmts[: len(stmts)//N]:
        print("  SQL:", s.replace("\n", " ")[:160])
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats("idp/|authlib|jose|cryptography|werkzeug/(wrappers|formparser)", 70)
    print(out.getvalue()[:12000])
    rt = r.json["refresh_token"]
    stmts.clear()
    t0 = time.process_time()
    for _ in range(N):
        r = refresh(client, rp, rt); assert r.status_code == 200, r.text; rt = r.json["refresh_token"]
    print(f"refresh CPU ms/req {(time.process_time()-t0)/N*1000:.3f} statements/req {len(stmts)/N:.1f}")
    at = r.json["access_token"]
    stmts.clear(); t0 = time.process_time()
    for _ in range(N):
        x = client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {at}"}); assert x.status_code == 200
    print(f"userinfo CPU ms/req {(time.process_time()-t0)/N*1000:.3f} statements/req {len(stmts)/N:.1f}")
    stmts.clear(); t0 = time.process_time()
    for _ in range(N):
        x = token_request_to(client, "/oauth/introspect", {"token": at}, rp.auth)
    print(f"introspect status {x.status_code} CPU ms/req {(time.process_time()-t0)/N*1000:.3f} statements/req {len(stmts)/N:.1f}")
