# Headless Chromium for the HTML report tests (driven by playwright-core, which ships no browser).
apt_install chromium fonts-dejavu-core
