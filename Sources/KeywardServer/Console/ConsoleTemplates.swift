import Foundation
import Hummingbird
import Mustache
import NIOCore

/// The console's templates and static files, compiled into the server (`Console/Assets`,
/// listed in `Package.swift`): nothing is read from disk or fetched at run time.
///
/// Templates are Mustache, and every value is written with `{{name}}`, which escapes HTML;
/// `ConsoleAssetsTests` checks that no template uses the unescaped forms (`{{{ }}}`, `{{& }}`).
struct ConsoleTemplates: Sendable {
    private let library: MustacheLibrary

    /// Parses every template; a template that does not parse is a build defect, reported here.
    init() throws {
        var library = MustacheLibrary()
        for (name, bytes) in Self.templates {
            try library.register(String(decoding: bytes, as: UTF8.self), named: name)
        }
        self.library = library
    }

    /// `model` rendered with the template `name`.
    func render(_ model: Any, _ name: String) -> String {
        library.render(model, withTemplate: name) ?? "<!doctype html><title>Keyward</title><p>The page '\(name)' has no template.</p>"
    }

    /// The templates, by name.
    static let templates: [(String, [UInt8])] = [
        ("header", PackageResources.header_mustache), ("footer", PackageResources.footer_mustache),
        ("login", PackageResources.login_mustache), ("keys", PackageResources.keys_mustache), ("key", PackageResources.key_mustache),
        ("tokens", PackageResources.tokens_mustache), ("token-created", PackageResources.token_created_mustache),
        ("audit", PackageResources.audit_mustache), ("health", PackageResources.health_mustache), ("error", PackageResources.error_mustache),
    ]

    /// The static files under `/ui/static/`: name, content type, bytes.
    static let statics: [String: (type: String, bytes: [UInt8])] = [
        "console.css": ("text/css; charset=utf-8", PackageResources.console_css),
        "console.js": ("text/javascript; charset=utf-8", PackageResources.console_js),
        // Named by every page, so browsers do not ask for /favicon.ico (an unauthenticated API
        // path that would spend the peer's failed-login budget).
        "favicon.svg": ("image/svg+xml", PackageResources.favicon_svg),
    ]

    /// The response for static file `name`, or nil.
    static func staticFile(_ name: String) -> Response? {
        guard let file = statics[name] else { return nil }
        return Response(status: .ok, headers: [.contentType: file.type, .cacheControl: "max-age=3600"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: file.bytes)))
    }
}
