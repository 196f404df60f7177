// SlicerUI: CNNSlicer's immediate-mode widget layer.
//
// Core (no SDL): `UIContext` turns an `InputState` into a `DrawData` (triangles in a few
// batches per layer). Widgets are method calls that edit caller-owned values and return
// whether they were used; IDs come from labels hashed under an ID stack (`withID`).
// Look: `Theme` (dark, light, high contrast), `UIScale`, `ColorMap`, `CategoricalPalette`,
// legends. SDL backend (the only code importing CSDL2): `SDLWindowHost` (desktop window and
// idle-friendly run loop), `SDLRenderBackend` (rendering, textures, read-back),
// `SDLFontAtlas` (glyphs), `HeadlessHost` (offscreen runs for tests and screenshots).
//
// A minimal app:
//
//     let host = try SDLWindowHost()
//     var state = AppState()                    // the app owns every value
//     host.run { ui in
//         ui.handleScaleShortcuts(&host.uiScale)
//         let (left, right) = ui.splitter("main", in: ui.displayRect, axis: .horizontal,
//                                         fraction: &state.split)
//         ui.panel("Controls", rect: left) {
//             if ui.button("Run") { state.start() }
//             ui.slider("Epoch", value: &state.epoch, in: 0...20)
//         }
//         ui.panel("Chart", rect: right) { drawChart(ui, state) }
//         if let error = state.error, ui.modalMessage("Error", message: error) { state.error = nil }
//     }
//
// A background engine calls `SDLWindowHost.wakeUp()` when it publishes results; animations
// call `ui.requestFrame(after:)`. Otherwise the loop sleeps in SDL_WaitEvent.
