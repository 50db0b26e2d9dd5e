/// The OpenAPI 3.1 document of the native API (`openapi.yaml`, this module's resource), as the
/// server serves it at `/v1/openapi.yaml`. The file is compiled in (SwiftPM's embed rule), so
/// there is no second copy to keep in step and nothing to install beside the binary.
public enum APIDocument {
    /// The document's text.
    public static let openAPIYAML: String = String(decoding: PackageResources.openapi_yaml, as: UTF8.self)
}
