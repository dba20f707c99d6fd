"""Operator hints in Vietnamese and English, taken from the runbook's steps.

One catalogue so a translation is reviewed in one place. Keys are stable; checks refer to
them by name.
"""

from __future__ import annotations

from nfdoctor.results import Hint

HINTS: dict[str, Hint] = {
    "database.unreachable": Hint(
        en="Check database connectivity: is the database server running and reachable from "
        "this host, and are the URL and password right? (runbook 1.2, 7.1)",
        vi="Kiểm tra kết nối cơ sở dữ liệu: máy chủ CSDL có đang chạy và truy cập được từ máy "
        "này không, URL và mật khẩu có đúng không? (runbook 1.2, 7.1)",
    ),
    "database.slow": Hint(
        en="Database answers slowly: check query performance and server load; optimise "
        "indexes (runbook 6.1, 6.2).",
        vi="CSDL phản hồi chậm: kiểm tra hiệu năng truy vấn và tải máy chủ; tối ưu chỉ mục "
        "(runbook 6.1, 6.2).",
    ),
    "database.locked": Hint(
        en="Another process holds a write lock on the database; wait for it or find it "
        "(fuser/lsof on the file) before repairing anything.",
        vi="Một tiến trình khác đang khóa ghi CSDL; hãy chờ hoặc tìm tiến trình đó "
        "(fuser/lsof trên tệp) trước khi sửa chữa.",
    ),
    "database.not_sqlite": Hint(
        en="The configured database file is not a SQLite database: check database.url "
        "points at the CRM's database, not a backup archive or log.",
        vi="Tệp CSDL được cấu hình không phải SQLite: kiểm tra database.url trỏ đến CSDL của "
        "CRM, không phải tệp sao lưu hay nhật ký.",
    ),
    "database.schema": Hint(
        en="The database does not match CRM schema v1: a migration is missing or was rolled "
        "back. Review recent deployments before running repairs (runbook 7.1).",
        vi="CSDL không khớp lược đồ CRM v1: thiếu migration hoặc đã bị rollback. Xem lại các "
        "lần triển khai gần đây trước khi chạy sửa chữa (runbook 7.1).",
    ),
    "database.integrity": Hint(
        en="Check database integrity: restore from the last good backup after verifying it "
        "(runbook 7.1, 7.2).",
        vi="Kiểm tra tính toàn vẹn CSDL: khôi phục từ bản sao lưu tốt gần nhất sau khi đã "
        "xác minh (runbook 7.1, 7.2).",
    ),
    "system.load": Hint(
        en="Monitor server CPU usage: find the busy processes (top), scale up workers or "
        "move load away (runbook 6.1, 6.2).",
        vi="Theo dõi CPU máy chủ: tìm tiến trình chiếm tải (top), tăng worker hoặc chuyển "
        "bớt tải (runbook 6.1, 6.2).",
    ),
    "system.memory": Hint(
        en="Monitor server memory usage: find what grows (ps aux --sort=-rss) and restart "
        "services in the right order (runbook 6.1, 7.1).",
        vi="Theo dõi bộ nhớ máy chủ: tìm tiến trình tăng bộ nhớ (ps aux --sort=-rss) và khởi "
        "động lại dịch vụ đúng thứ tự (runbook 6.1, 7.1).",
    ),
    "system.disk": Hint(
        en="Free disk space where the database and logs live: rotate or compress logs, "
        "move old backups off the host (runbook 7.2).",
        vi="Giải phóng dung lượng đĩa nơi chứa CSDL và nhật ký: xoay vòng hoặc nén nhật ký, "
        "chuyển bản sao lưu cũ khỏi máy (runbook 7.2).",
    ),
    "config.changes": Hint(
        en="Review recent configuration changes: if the trouble started after one of these, "
        "roll it back first (runbook 1.2, 7.1).",
        vi="Xem lại các thay đổi cấu hình gần đây: nếu sự cố bắt đầu sau một thay đổi, hãy "
        "hoàn tác nó trước (runbook 1.2, 7.1).",
    ),
    # ---- platforms (runbook 1 "quick diagnosis", 2.1-2.3, 3.1, 3.3, 6.2) ----------------
    "platform.unreachable": Hint(
        en="Verify internet connectivity from this host to {platform}: DNS (resolvectl query), "
        "firewall and proxy rules, then the platform's status page; the failed phase above "
        "says where the connection drops (runbook 1, 6.1).",
        vi="Kiểm tra kết nối internet từ máy này đến {platform}: DNS (resolvectl query), "
        "tường lửa và proxy, rồi trang trạng thái của nền tảng; bước thất bại ở trên cho biết "
        "kết nối bị rớt ở đâu (runbook 1, 6.1).",
    ),
    "platform.slow": Hint(
        en="{platform} answers slower than the API target: check this host's network and the "
        "platform's status page; reduce polling frequency (runbook 6.2: API calls < 1 s).",
        vi="{platform} phản hồi chậm hơn mục tiêu API: kiểm tra mạng của máy này và trang "
        "trạng thái của nền tảng; giảm tần suất gọi (runbook 6.2: API < 1 giây).",
    ),
    "platform.transient": Hint(
        en="{platform} is failing on its side (server overload): check its status page, let "
        "the retry mechanism work, and contact its support if it persists (runbook 2.1).",
        vi="{platform} đang lỗi phía máy chủ (quá tải): xem trang trạng thái, để cơ chế thử "
        "lại hoạt động, liên hệ hỗ trợ nếu kéo dài (runbook 2.1).",
    ),
    "platform.unexpected": Hint(
        en="{platform} returned something that is not its API's JSON (an HTML error page or a "
        "truncated body): a proxy or CDN in between, or an outage; check the status page "
        "and any proxy on this host (runbook 2.1).",
        vi="{platform} trả về nội dung không phải JSON của API (trang lỗi HTML hoặc dữ liệu "
        "bị cắt): có proxy/CDN ở giữa hoặc sự cố; kiểm tra trang trạng thái và proxy trên "
        "máy này (runbook 2.1).",
    ),
    "platform.rate_limited": Hint(
        en="Rate limit exceeded on {platform}: back off exponentially, reduce polling "
        "frequency, cache responses, upgrade the tier if needed (runbook 2.1, 3.3).",
        vi="Vượt giới hạn gọi API của {platform}: lùi thời gian theo hàm mũ, giảm tần suất "
        "gọi, lưu đệm phản hồi, nâng hạn mức nếu cần (runbook 2.1, 3.3).",
    ),
    "platform.rate_usage": Hint(
        en="{platform} rate-limit usage is high: spread the polling, add delays between "
        "messages and queue bulk work before calls start failing (runbook 3.3).",
        vi="Mức dùng giới hạn API {platform} đang cao: giãn lịch gọi, thêm độ trễ giữa các "
        "tin nhắn và xếp hàng công việc lớn trước khi bị từ chối (runbook 3.3).",
    ),
    "platform.token_expired": Hint(
        en="The {platform} access token has expired: refresh it (runbook 2.2: refresh access "
        "token, update it in the CRM, test API connectivity) and make sure the scheduled "
        "refresh runs.",
        vi="Access token {platform} đã hết hạn: làm mới token (runbook 2.2: làm mới access "
        "token, cập nhật vào CRM, kiểm tra kết nối API) và đảm bảo lịch làm mới tự động chạy.",
    ),
    "platform.token_invalid": Hint(
        en="The {platform} token was rejected (revoked, or issued to another app or shop): "
        "re-authorize the shop in the seller/page admin and store the new token "
        "(runbook 2.1 'invalid partner credentials', 2.3 'page access token invalid').",
        vi="Token {platform} bị từ chối (bị thu hồi hoặc thuộc ứng dụng/cửa hàng khác): cấp "
        "quyền lại cho cửa hàng trong trang quản trị và lưu token mới (runbook 2.1, 2.3).",
    ),
    "platform.refresh_invalid": Hint(
        en="The {platform} refresh token is expired, revoked or already used: the seller must "
        "re-authorize the app; then store the new tokens (runbook 2.1 step 3).",
        vi="Refresh token {platform} đã hết hạn, bị thu hồi hoặc đã dùng: người bán cần cấp "
        "quyền lại cho ứng dụng, rồi lưu token mới (runbook 2.1 bước 3).",
    ),
    "platform.bad_signature": Hint(
        en="{platform} rejected the request signature: check the partner key / app secret "
        "in the config matches the developer console, and this host's clock (NTP) "
        "(runbook 2.1 'invalid partner credentials').",
        vi="{platform} từ chối chữ ký yêu cầu: kiểm tra partner key / app secret trong cấu "
        "hình khớp với trang nhà phát triển, và đồng hồ máy này (NTP) (runbook 2.1).",
    ),
    "platform.bad_credentials": Hint(
        en="Invalid partner credentials for {platform}: regenerate the partner key, update the "
        "credentials in the CRM and nfdoctor's config, re-authorize, test the connection "
        "(runbook 2.1).",
        vi="Thông tin đối tác {platform} không hợp lệ: tạo lại partner key, cập nhật thông "
        "tin trong CRM và cấu hình nfdoctor, cấp quyền lại, kiểm tra kết nối (runbook 2.1).",
    ),
    "platform.permission": Hint(
        en="{platform} denied permission: check the API permissions granted to the app and "
        "the page/shop's messaging permissions (runbook 3.1 step 2, 3.3 check 1).",
        vi="{platform} từ chối quyền: kiểm tra quyền API đã cấp cho ứng dụng và quyền nhắn "
        "tin của trang/cửa hàng (runbook 3.1 bước 2, 3.3).",
    ),
    "platform.bad_parameters": Hint(
        en="{platform} rejected the request's parameters: check the shop/page id and app ids "
        "in the config against the developer console.",
        vi="{platform} từ chối tham số yêu cầu: đối chiếu mã cửa hàng/trang và mã ứng dụng "
        "trong cấu hình với trang nhà phát triển.",
    ),
    "platform.schema_drift": Hint(
        en="{platform} changed its API response (the runbook's 'API changes'): check the "
        "platform's changelog and update the CRM's field mapping before data goes missing "
        "(runbook 5.1 'verify data mapping rules').",
        vi="{platform} đã thay đổi phản hồi API ('API changes' trong runbook): xem nhật ký "
        "thay đổi của nền tảng và cập nhật ánh xạ trường của CRM trước khi mất dữ liệu "
        "(runbook 5.1).",
    ),
    "platform.clock_skew": Hint(
        en="This host's clock disagrees with {platform}'s. Shopee, Lazada and TikTok reject "
        "a signed timestamp outside their tolerance, and on every platform a wrong clock "
        "misjudges token expiry. Sync time (timedatectl; chrony or systemd-timesyncd).",
        vi="Đồng hồ máy này lệch với {platform}. Shopee, Lazada và TikTok từ chối dấu thời "
        "gian có chữ ký lệch quá mức cho phép, và trên mọi nền tảng đồng hồ sai làm tính sai "
        "hạn token. Đồng bộ giờ (timedatectl; chrony hoặc systemd-timesyncd).",
    ),
    "platform.cert_expiry": Hint(
        en="The TLS certificate {platform} presents expires soon: if this is a proxy or "
        "sandbox you run, renew it; otherwise watch the platform's status page.",
        vi="Chứng chỉ TLS mà {platform} đưa ra sắp hết hạn: nếu đây là proxy hoặc sandbox "
        "của bạn, hãy gia hạn; nếu không, theo dõi trang trạng thái của nền tảng.",
    ),
    "token.missing": Hint(
        en="No {platform} token is stored for this account: authorize the shop (seller "
        "center / page admin) and store its tokens, or point tokens.store/path at the "
        "store that has them (docs/tokens.md).",
        vi="Chưa lưu token {platform} cho tài khoản này: cấp quyền cho cửa hàng và lưu "
        "token, hoặc trỏ tokens.store/path đến kho đang chứa token (docs/tokens.md).",
    ),
    "token.expiring": Hint(
        en="The {platform} token expires soon: refresh it now and check the scheduled refresh "
        "(runbook 2.2 prevention: auto token refresh, alerts 7 days before expiry).",
        vi="Token {platform} sắp hết hạn: làm mới ngay và kiểm tra lịch làm mới tự động "
        "(runbook 2.2: tự động làm mới, cảnh báo 7 ngày trước khi hết hạn).",
    ),
    "token.refresh_overdue": Hint(
        en="The {platform} access token has expired although its refresh token is still "
        "valid: the scheduled refresh is not running or failing. Check the cron job or "
        "systemd timer and its log, then refresh now (runbook 2.2: auto token refresh).",
        vi="Access token {platform} đã hết hạn dù refresh token vẫn còn hạn: lịch làm mới "
        "tự động không chạy hoặc bị lỗi. Kiểm tra cron hoặc systemd timer và nhật ký của nó, "
        "rồi làm mới ngay (runbook 2.2: tự động làm mới token).",
    ),
    "token.malformed": Hint(
        en="The stored {platform} token is damaged (a line break, a space or a control "
        "character pasted with it): no platform accepts it. Store the token again without "
        "the extra characters, or re-authorize the shop (docs/tokens.md).",
        vi="Token {platform} đang lưu bị hỏng (dính xuống dòng, khoảng trắng hoặc ký tự điều "
        "khiển khi dán): không nền tảng nào chấp nhận. Lưu lại token không có các ký tự thừa, "
        "hoặc cấp quyền lại cho cửa hàng (docs/tokens.md).",
    ),
    "token.file_permissions": Hint(
        en="The token file can be read or changed by other users of this server: anyone who "
        "reads it can act as the shops. Run the chmod shown, and keep the file owned by the "
        "user that runs nfdoctor (docs/tokens.md).",
        vi="Tệp token có thể bị người dùng khác trên máy chủ đọc hoặc sửa: ai đọc được là "
        "có thể thao tác thay cửa hàng. Chạy lệnh chmod đã nêu và để tệp thuộc người dùng "
        "chạy nfdoctor (docs/tokens.md).",
    ),
    "token.interrupted": Hint(
        en="A refresh of this {platform} account received a new pair and stopped before "
        "saving it (the journal keeps it): run the refresh command below, which saves it "
        "before the old access token runs out.",
        vi="Một lần làm mới token {platform} đã nhận cặp token mới nhưng dừng trước khi lưu "
        "(nhật ký vẫn giữ): chạy lệnh làm mới bên dưới để lưu trước khi access token cũ hết hạn.",
    ),
    "token.page_reauthorize": Hint(
        en="The {platform} Page token is no longer valid (an admin changed their password, a "
        "security checkpoint, the Page role was removed, or the app was inactive for 90 "
        "days). There is no refresh token: a Page admin must authorise the app again "
        "(runbook 2.3: generate new page access token, update it in the CRM).",
        vi="Page token {platform} không còn hiệu lực (quản trị viên đổi mật khẩu, kiểm tra bảo "
        "mật, mất vai trò trên Page, hoặc ứng dụng không hoạt động 90 ngày). Không có refresh "
        "token: quản trị viên Page phải cấp quyền lại cho ứng dụng (runbook 2.3: tạo page "
        "access token mới, cập nhật vào CRM).",
    ),
    "token.outcome_unknown": Hint(
        en="A refresh of this {platform} account was sent and no answer came: the platform "
        "may have spent the refresh token and issued a pair nobody received. Try the stored "
        "refresh token once (the command below); if {platform} refuses it as used, only "
        "authorising the shop again brings it back.",
        vi="Một lần làm mới token {platform} đã gửi đi mà không nhận được phản hồi: nền tảng "
        "có thể đã dùng refresh token và cấp cặp token mới mà không ai nhận được. Thử refresh "
        "token đang lưu một lần (lệnh bên dưới); nếu {platform} từ chối vì đã dùng, chỉ có "
        "cách cấp quyền lại cho cửa hàng.",
    ),
    "token.not_saved": Hint(
        en="{platform} issued a new pair but the token store could not keep it: it is in the "
        "recovery file named above (0600). Fix the store (database, disk, keyring), then "
        "import the file with the command below before the access token expires.",
        vi="{platform} đã cấp cặp token mới nhưng kho token không lưu được: cặp token nằm "
        "trong tệp khôi phục nêu trên (0600). Sửa kho token (CSDL, ổ đĩa, keyring), rồi nhập "
        "tệp bằng lệnh bên dưới trước khi access token hết hạn.",
    ),
    "token.reauthorize": Hint(
        en="The {platform} refresh token is expiring or gone: only the seller can grant a new "
        "one; ask them to re-authorize the app before it lapses (runbook 2.1 step 3).",
        vi="Refresh token {platform} sắp hết hạn hoặc không còn: chỉ người bán mới cấp lại "
        "được; hãy nhờ họ cấp quyền lại cho ứng dụng trước khi hết hạn (runbook 2.1 bước 3).",
    ),
    "sync.lagging": Hint(
        en="The CRM is missing order updates {platform} already has: its webhooks or its own "
        "sync fell behind. Re-sync the range with the command below (it is safe to run again: "
        "nothing is duplicated), then find why the updates stopped (webhook check, runbook "
        "order sync).",
        vi="CRM đang thiếu các cập nhật đơn hàng mà {platform} đã có: webhook hoặc đồng bộ của "
        "CRM bị chậm. Đồng bộ lại khoảng thời gian bằng lệnh bên dưới (chạy lại nhiều lần vẫn "
        "an toàn: không tạo bản trùng), rồi tìm nguyên nhân (kiểm tra webhook, quy trình đồng "
        "bộ đơn hàng).",
    ),
    "webhook.url_missing": Hint(
        en="Set platforms.<platform>.webhook_url to the URL configured at {platform} for the "
        "CRM, so nfdoctor can check the receiver (runbook 3.1 step 1).",
        vi="Đặt platforms.<platform>.webhook_url bằng URL đã cấu hình trên {platform} cho CRM "
        "để nfdoctor kiểm tra được bộ nhận webhook (runbook 3.1 bước 1).",
    ),
    "webhook.url": Hint(
        en="{platform} delivers only to an https:// URL (TikTok and Zalo: a domain without a "
        "port). Fix the URL at {platform} and in the config (runbook 3.1 'confirm callback "
        "URLs correct').",
        vi="{platform} chỉ gửi tới URL https:// (TikTok và Zalo: tên miền không kèm cổng). "
        "Sửa URL trên {platform} và trong cấu hình (runbook 3.1 'xác nhận callback URL').",
    ),
    "webhook.tls": Hint(
        en="Fix the receiver's certificate: renew it, serve the full chain (leaf and "
        "intermediates), and make it match the host name; {platform} stops delivering to a "
        "receiver whose certificate it refuses (runbook 3.1 'check SSL certificate valid').",
        vi="Sửa chứng chỉ của bộ nhận: gia hạn, gửi đủ chuỗi (chứng chỉ lá và trung gian) và "
        "khớp tên miền; {platform} ngừng gửi tới bộ nhận có chứng chỉ không hợp lệ (runbook "
        "3.1 'kiểm tra chứng chỉ SSL').",
    ),
    "webhook.cert_level": Hint(
        en="{platform} needs an OV or EV certificate from a public CA for its push URL; a "
        "DV certificate (Let's Encrypt and the like) does not work. Buy an OV certificate "
        "for the webhook host.",
        vi="{platform} yêu cầu chứng chỉ OV hoặc EV của CA công cộng cho URL nhận push; "
        "chứng chỉ DV (như Let's Encrypt) không dùng được. Hãy mua chứng chỉ OV cho tên miền "
        "webhook.",
    ),
    "webhook.unreachable": Hint(
        en="The webhook URL does not answer: check DNS, the firewall, the reverse proxy and "
        "that the CRM's webhook service runs (runbook 3.1 'verify webhook URL accessible').",
        vi="URL webhook không phản hồi: kiểm tra DNS, tường lửa, reverse proxy và dịch vụ "
        "webhook của CRM có đang chạy (runbook 3.1 'kiểm tra URL webhook truy cập được').",
    ),
    "webhook.refused": Hint(
        en="The receiver does not acknowledge {platform}'s deliveries: check the route, the "
        "secret the CRM verifies with, and its error log (runbook 3.1 step 3).",
        vi="Bộ nhận không xác nhận các lần gửi của {platform}: kiểm tra route, secret CRM dùng "
        "để xác minh và nhật ký lỗi (runbook 3.1 bước 3).",
    ),
    "webhook.slow_ack": Hint(
        en="Acknowledge first, process later: answer {platform} 200 at once and queue the "
        "work, so it does not retry and the CRM does not store duplicates (runbook incident "
        "1 'Shopee webhook timeout', 3.2 'proper webhook acknowledgment').",
        vi="Xác nhận trước, xử lý sau: trả 200 cho {platform} ngay rồi đưa việc vào hàng đợi, "
        "để nền tảng không gửi lại và CRM không lưu trùng (runbook sự cố 1 'Shopee webhook "
        "timeout', 3.2 'xác nhận webhook đúng cách').",
    ),
    "webhook.ack_body": Hint(
        en="Answer {platform}'s deliveries with an empty body (status 200, no content).",
        vi="Trả lời các lần gửi của {platform} với nội dung rỗng (mã 200, không có body).",
    ),
    "webhook.unsigned": Hint(
        en="Verify {platform}'s signature over the raw body and refuse a wrong one with 401; "
        "otherwise anyone who knows the URL can inject messages and orders.",
        vi="Xác minh chữ ký {platform} trên body gốc và từ chối chữ ký sai bằng 401; nếu "
        "không, ai biết URL cũng có thể giả mạo tin nhắn và đơn hàng.",
    ),
    "webhook.handshake": Hint(
        en="Facebook's GET verification must answer 200 with exactly hub.challenge as the "
        "body, after checking hub.verify_token (runbook 2.3 'webhook verification failed': "
        "check verify token, return challenge string correctly).",
        vi="Yêu cầu xác minh GET của Facebook phải trả 200 với body đúng bằng hub.challenge, "
        "sau khi kiểm tra hub.verify_token (runbook 2.3: kiểm tra verify token, trả đúng "
        "chuỗi challenge).",
    ),
    "webhook.dedupe": Hint(
        en="The receiver stores every delivery of a message: deduplicate on the platform's "
        "message id (a unique key on messages (shop_id, external_id)), then clean up with "
        "nfdoctor dedupe (runbook 3.2).",
        vi="Bộ nhận lưu mọi lần gửi của một tin nhắn: chống trùng theo mã tin nhắn của nền "
        "tảng (khóa duy nhất trên messages (shop_id, external_id)), rồi dọn dẹp bằng "
        "nfdoctor dedupe (runbook 3.2).",
    ),
    "webhook.not_stored": Hint(
        en="The receiver acknowledged but the message did not reach the inbox in time: check "
        "the CRM's message processing pipeline, its queue and worker logs (runbook 3.1 "
        "steps 3-4).",
        vi="Bộ nhận đã xác nhận nhưng tin nhắn không vào hộp thư kịp thời: kiểm tra luồng xử "
        "lý tin nhắn, hàng đợi và nhật ký worker của CRM (runbook 3.1 bước 3-4).",
    ),
    "webhook.redirect": Hint(
        en="Platforms do not follow redirects: configure the final https URL at {platform}.",
        vi="Nền tảng không đi theo chuyển hướng: cấu hình URL https cuối cùng trên {platform}.",
    ),
    "webhook.url_mismatch": Hint(
        en="{platform} delivers to another URL than the CRM's: update the callback URL in the "
        "platform's console (runbook 3.1 'confirm callback URLs correct').",
        vi="{platform} đang gửi tới URL khác với URL của CRM: cập nhật callback URL trong "
        "trang quản trị của nền tảng (runbook 3.1 'xác nhận callback URL').",
    ),
    "webhook.not_subscribed": Hint(
        en="Subscribe to chat messages again (Facebook: POST /{{page-id}}/subscribed_apps "
        "with subscribed_fields=messages) (runbook 2.3 step 4 're-subscribe to webhook').",
        vi="Đăng ký lại sự kiện tin nhắn (Facebook: POST /{{page-id}}/subscribed_apps với "
        "subscribed_fields=messages) (runbook 2.3 bước 4 'đăng ký lại webhook').",
    ),
    "webhook.push_health": Hint(
        en="{platform} reports failing pushes: fix the receiver, then recover what it gave up "
        "on (nfdoctor webhook lost shopee --replay).",
        vi="{platform} báo push thất bại: sửa bộ nhận, rồi lấy lại các push đã bị bỏ "
        "(nfdoctor webhook lost shopee --replay).",
    ),
    "signature.body": Hint(
        en="Verify the raw request body, the exact bytes received, captured before any JSON "
        "parsing, pretty-printing or editor: the platform signs those bytes, and the CRM's "
        "receiver must hash them too.",
        vi="Hãy kiểm tra đúng phần thân thô của yêu cầu, từng byte nhận được, lưu trước khi "
        "phân tích JSON, định dạng lại hay mở bằng trình soạn thảo: nền tảng ký đúng các byte "
        "đó, và bộ nhận webhook của CRM cũng phải băm đúng các byte đó.",
    ),
    "signature.secret": Hint(
        en="The delivery is signed with another secret than the one configured for it: fix "
        "the config setting named above (and the CRM receiver's secret to match).",
        vi="Bản tin được ký bằng một khóa bí mật khác với khóa đã cấu hình: sửa mục cấu hình "
        "nêu ở trên (và khóa của bộ nhận webhook trong CRM cho khớp).",
    ),
    "signature.url": Hint(
        en="The platform signs the callback URL character for character: make "
        "webhook_url (and the CRM receiver's URL) exactly the one set in the platform's "
        "console.",
        vi="Nền tảng ký URL callback đúng từng ký tự: đặt webhook_url (và URL của bộ nhận "
        "trong CRM) giống hệt URL đã khai báo trên trang quản trị của nền tảng.",
    ),
    "signature.shape": Hint(
        en="Compare the whole header value exactly as the platform sends it: its prefix "
        "once, then lower-case hex.",
        vi="So sánh toàn bộ giá trị header đúng như nền tảng gửi: tiền tố một lần, sau đó là "
        "chuỗi hex chữ thường.",
    ),
    "signature.first_term": Hint(
        en="Sources disagree on this detail of the signature (docs/platforms.md): set the "
        "config option named above, so nfdoctor and the CRM's receiver verify the way the "
        "platform signs.",
        vi="Các nguồn tài liệu không thống nhất về chi tiết chữ ký này (docs/platforms.md): "
        "đặt tùy chọn cấu hình nêu ở trên để nfdoctor và bộ nhận của CRM xác minh đúng cách "
        "nền tảng ký.",
    ),
    "signature.timestamp": Hint(
        en="The signed timestamp comes from somewhere else than assumed: verify with the "
        "timestamp named above, and make the CRM's receiver take it from the same place.",
        vi="Mốc thời gian được ký lấy từ nơi khác với giả định: xác minh với mốc thời gian "
        "nêu ở trên, và cho bộ nhận của CRM lấy nó từ cùng chỗ đó.",
    ),
    "signature.none": Hint(
        en="Make sure the body file and the signature come from the same delivery, and that "
        "the configured secret is the one in the platform's console (was it rotated?).",
        vi="Đảm bảo tệp nội dung và chữ ký đến từ cùng một lần gửi, và khóa bí mật đã cấu "
        "hình đúng là khóa trên trang quản trị của nền tảng (đã bị đổi chưa?).",
    ),
}


#: how each error category is judged: RATE_LIMITED means the API works but throttles us;
#: everything else means calls for this shop fail now.
CATEGORY_HINTS: dict[str, str] = {
    "token_expired": "platform.token_expired",
    "token_invalid": "platform.token_invalid",
    "refresh_token_invalid": "platform.refresh_invalid",
    "bad_signature": "platform.bad_signature",
    "bad_credentials": "platform.bad_credentials",
    "permission_denied": "platform.permission",
    "rate_limited": "platform.rate_limited",
    "bad_parameters": "platform.bad_parameters",
    "transient": "platform.transient",
    "unexpected_response": "platform.unexpected",
    "unreachable": "platform.unreachable",
}


def platform_hint(key: str, platform_title: str) -> Hint:
    """The hint ``key`` with ``{platform}`` filled in (``Shopee``, ``Zalo OA`` …)."""
    hint = HINTS[key]
    return Hint(
        en=hint.en.format(platform=platform_title), vi=hint.vi.format(platform=platform_title)
    )
