"""The platform's look as settings: name, logo, favicon and footer lines on every page."""

from __future__ import annotations

from pathlib import Path

import pytest

from idp.config import ConfigError, Settings

FOOTER = {
    "footer_sponsor": "上海市房屋管理局",
    "footer_support": "上海某信息技术有限公司",
    "footer_hotline": "021-12345678",
    "footer_icp": "沪ICP备12345678号",
    "help_url": "https://help.example.cn/idp",
}


@pytest.fixture
def logo(tmp_path: Path) -> Path:
    path = tmp_path / "city.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    return path


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest, logo: Path) -> dict[str, object]:
    return dict(getattr(request, "param", {}), brand_logo=logo)


def test_default_look_names_the_platform_and_serves_built_in_images(client):
    page = client.get("/login").get_data(as_text=True)

    assert "<title>" in page and "· 统一认证登录平台</title>" in page
    assert 'href="/brand/favicon"' in page
    assert "主办单位" not in page and "ICP" not in page  # no empty footer lines
    favicon = client.get("/brand/favicon")
    assert favicon.status_code == 200
    assert favicon.mimetype == "image/svg+xml"
    assert b"<svg" in favicon.data
    assert "max-age=86400" in favicon.headers["Cache-Control"]
    assert favicon.headers["Content-Security-Policy"].startswith("default-src 'none'")


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            **FOOTER,
            "brand_name": "上海市维修资金统一认证平台",
            "brand_name_en": "Shanghai Fund Login",
        }
    ],
    indirect=True,
)
def test_configured_name_and_footer_appear_in_both_languages(client, logo: Path):
    chinese = client.get("/login").get_data(as_text=True)
    english = client.get("/login?lang=en").get_data(as_text=True)

    assert "上海市维修资金统一认证平台" in chinese
    assert "主办单位：上海市房屋管理局" in chinese
    assert "技术支持：上海某信息技术有限公司" in chinese
    assert "服务热线：021-12345678" in chinese
    assert '<a href="https://beian.miit.gov.cn/" rel="noopener">沪ICP备12345678号</a>' in chinese
    assert '<a href="https://help.example.cn/idp">帮助</a>' in chinese
    assert "Shanghai Fund Login" in english and "上海市维修资金统一认证平台" not in english
    assert "Hosted by: 上海市房屋管理局" in english
    served = client.get("/brand/logo")
    assert served.status_code == 200
    assert served.mimetype == "image/png"
    assert served.data == logo.read_bytes()


@pytest.mark.parametrize(
    "settings_overrides", [{"footer_sponsor": "<script>alert(1)</script>"}], indirect=True
)
def test_footer_text_is_escaped(client):
    page = client.get("/login").get_data(as_text=True)

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


def test_a_missing_or_non_image_logo_is_refused_naming_the_variable(tmp_path: Path):
    text = tmp_path / "logo.txt"
    text.write_text("not an image")

    with pytest.raises(ConfigError, match=r"IDP_BRAND_LOGO is not a readable file: .*gone\.svg"):
        Settings.from_env({}, brand_logo=tmp_path / "gone.svg", instance_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"IDP_BRAND_FAVICON must be an image file"):
        Settings.from_env({}, brand_favicon=text, instance_dir=tmp_path)
